import gzip

import numpy as np
import pytest

from harness.training.datasets import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    Dataset,
    DatasetError,
    load_dataset,
    load_digits,
    load_mnist,
    read_idx,
    write_idx,
)

# --- digits ---------------------------------------------------------------------------


def test_digits_split_is_scaled_stratified_and_complete():
    data = load_digits(test_fraction=0.2, seed=0)
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0  # 0..16 scaled by 16
    # Stratified: every class's share of the test split is its share of the whole.
    all_labels = np.concatenate([data.y_train, data.y_test])
    overall = np.bincount(all_labels) / len(all_labels)
    test_share = np.bincount(data.y_test, minlength=10) / len(data.y_test)
    assert np.max(np.abs(test_share - overall)) < 0.01


def test_digits_split_follows_the_seed():
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_unknown_data_set_is_named():
    with pytest.raises(DatasetError, match=r"--data 'cifar': unknown data set; expected one of digits, mnist"):
        load_dataset("cifar")


def test_mnist_without_data_dir_says_what_is_needed():
    with pytest.raises(DatasetError, match="--data mnist needs --data-dir"):
        load_dataset("mnist")


# --- IDX files ------------------------------------------------------------------------


def tiny_mnist(directory, n_train=12, n_test=5, gz=False, seed=0):
    """Write the four MNIST files with ``n_train``/``n_test`` random 28x28 images."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("images.idx" + (".gz" if gz else ""))
    write_idx(path, images)
    raw = gzip.open(path).read() if gz else path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])  # the standard magic, 2051
    assert raw[4:8] == (2).to_bytes(4, "big")  # big-endian dimensions
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_mnist_reads_the_four_files(tmp_path, gz):
    arrays = tiny_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (5, 784)
    np.testing.assert_allclose(data.x_train, arrays["train"][0].reshape(12, 784) / 255.0)
    np.testing.assert_array_equal(data.y_test, arrays["t10k"][1])
    assert data.y_train.dtype == np.int64 and data.x_train.max() <= 1.0


def test_load_mnist_accepts_a_mix_of_plain_and_gzipped(tmp_path):
    tiny_mnist(tmp_path, gz=True)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(gzip.open(labels).read())
    labels.unlink()
    assert load_mnist(tmp_path).y_test.shape == (5,)


def assert_one_line_naming(exc_info, path, *fragments):
    message = str(exc_info.value)
    assert "\n" not in message
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file_is_named(tmp_path):
    tiny_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, tmp_path / "t10k-images-idx3-ubyte", "no such file")


def test_a_folder_in_a_file_s_place_is_named_as_a_folder(tmp_path):
    tiny_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.unlink()
    images.mkdir()  # (it was said as "no such file")
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, images, "is a folder")


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path / "nowhere")
    assert_one_line_naming(exc_info, tmp_path / "nowhere", "no such directory")


def test_bad_magic_is_named(tmp_path):
    tiny_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2] = 0x0D  # float instead of unsigned byte
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, path, "magic number 3331", f"expected {IMAGES_MAGIC}")


def test_labels_file_in_place_of_images_is_caught_by_magic(tmp_path):
    tiny_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, images, f"magic number {LABELS_MAGIC}")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_truncated_payload_is_named(tmp_path, gz):
    tiny_mnist(tmp_path, gz=gz)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    raw = gzip.open(path).read() if gz else path.read_bytes()
    raw = raw[:-100]
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(raw)
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, path, "truncated", f"expected {12 * 28 * 28}")


def test_truncated_header_is_named(tmp_path):
    tiny_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, path, "truncated header")


def test_trailing_bytes_are_named(tmp_path):
    tiny_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, path, "trailing bytes")


def test_cut_gzip_stream_is_named(tmp_path):
    tiny_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, path, "cannot read")


def test_count_mismatch_names_both_files(tmp_path):
    tiny_mnist(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    write_idx(labels, np.zeros(11, np.uint8))
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, labels, "11 labels", "12 images", str(tmp_path / "train-images-idx3-ubyte"))


def test_images_of_no_pixels_are_named_with_their_size(tmp_path):
    tiny_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    write_idx(images, np.zeros((12, 0, 28), np.uint8))  # (it went on to "width 0 is not an integer >= 1")
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, images, "images of 0x28 pixels", "at least 1x1")


def test_label_out_of_range_is_named(tmp_path):
    tiny_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.array([1, 2, 10, 3, 4], np.uint8))
    with pytest.raises(DatasetError) as exc_info:
        load_mnist(tmp_path)
    assert_one_line_naming(exc_info, labels, "label 10 at index 2", "0..9")


def test_write_idx_refuses_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="expected uint8"):
        write_idx(tmp_path / "x", np.zeros(3, np.int32))


@pytest.mark.parametrize("y, expected", [([0, -1, 2], "y_test: label -1 at index 1; expected labels 0..9"),
                                         ([0, 10, 2], "y_test: label 10 at index 1; expected labels 0..9")])
def test_a_data_set_with_a_label_that_is_no_class_is_refused_naming_it(y, expected):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=f"data set mine: {expected}"):
        Dataset("mine", x, np.array([0, 1, 2]), x, np.array(y))


def test_a_gzip_file_that_inflates_far_beyond_its_header_is_refused_after_reading_what_the_header_says(tmp_path):
    """A 3 MB gzip file whose header says 100 images of 28x28 and which inflates to
    300 MB: before, all of it was inflated (gigabytes, for a larger one) before the
    trailing bytes were seen; now reading stops one byte past the header's payload."""
    import gzip
    import resource

    from harness.training.datasets import DatasetError, read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write((2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (100, 28, 28)))
        zeros = bytes(1 << 20)
        for _ in range(300):
            fh.write(zeros)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetError, match="trailing bytes: more data than the 78400 bytes dimensions 100x28x28 hold"):
        read_idx(path, 2051)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 << 10  # KiB: far below the 300 MB inflated


def test_an_idx_header_whose_size_overflows_int64_is_said_as_truncated(tmp_path):
    from harness.training.datasets import DatasetError, read_idx

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes((2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2**31, 65536, 65536)) + b"\0" * 10)
    with pytest.raises(DatasetError, match=r"truncated: 10 bytes of data, expected 9223372036854775808 "):
        read_idx(path, 2051)
