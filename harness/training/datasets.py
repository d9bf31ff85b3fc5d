"""Data to train on: scikit-learn's handwritten digits, and MNIST read from IDX files.

Every loader returns a ``Dataset`` of float64 pixels scaled to [0, 1], one row per
image, and int64 labels. A missing, truncated or corrupt file raises
``DatasetError`` with one line that names the file and the problem.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "mnist")

# The four standard MNIST files (each may also be gzipped, with ``.gz`` appended).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX magic numbers: two zero bytes, a type code (0x08: unsigned byte), the number
# of dimensions. Images are 3-D (count, rows, columns), labels 1-D (count).
IMAGES_MAGIC = 0x00000803  # 2051
LABELS_MAGIC = 0x00000801  # 2049
N_CLASSES = 10


class DatasetError(ValueError):
    """A data set could not be found or read: the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test splits: ``x`` float64 (N, features) in [0, 1], ``y`` int64 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = N_CLASSES

    def __post_init__(self):  # what every loader and a caller's own data set are held to
        from harness.core.cases import check_labels

        for split, x, y in (("y_train", self.x_train, self.y_train), ("y_test", self.x_test, self.y_test)):
            check_labels(y, len(x), self.n_classes, f"data set {self.name}: {split}")

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def describe(self) -> str:
        return f"{self.name}: {len(self.y_train)} train, {len(self.y_test)} test, {self.n_features} features"


def load_dataset(name: str, data_dir=None, *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The data set called ``name`` (one of ``DATASETS``)."""
    if name == "digits":
        if data_dir is not None:
            raise DatasetError("--data-dir is for --data mnist; digits ship inside scikit-learn")
        return load_digits(test_fraction=test_fraction, seed=seed)
    if name == "mnist":
        if data_dir is None:
            raise DatasetError("--data mnist needs --data-dir DIR holding the four MNIST IDX files")
        return load_mnist(data_dir)
    raise DatasetError(f"--data {name!r}: unknown data set; expected one of {', '.join(DATASETS)}")


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, pixels 0..16 scaled to [0, 1], split
    ``test_fraction`` for testing, stratified by label and seeded."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction={test_fraction!r}: expected a number between 0 and 1")
    bunch = sklearn_digits()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset("digits", x_train, y_train, x_test, y_test)


def load_mnist(data_dir) -> Dataset:
    """MNIST's standard IDX files from ``data_dir`` (plain or ``.gz``): 60,000 train
    and 10,000 test images of 28x28 = 784 pixels, scaled from 0..255 to [0, 1]."""
    if not os.path.isdir(data_dir):
        raise DatasetError(f"--data-dir {data_dir}: no such directory")
    splits = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images_path = find_idx_file(data_dir, images_name)
        labels_path = find_idx_file(data_dir, labels_name)
        images = read_idx(images_path, IMAGES_MAGIC)
        labels = read_idx(labels_path, LABELS_MAGIC)
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{labels_path}: {labels.shape[0]} labels, but {images_path} holds {images.shape[0]} images; expected equal counts"
            )
        if labels.size and labels.max() >= N_CLASSES:
            index = int(np.argmax(labels >= N_CLASSES))
            raise DatasetError(f"{labels_path}: label {int(labels[index])} at index {index}; expected labels 0..9")
        if images.shape[0] == 0:
            raise DatasetError(f"{images_path}: holds no images; expected at least one")
        if 0 in images.shape[1:]:
            raise DatasetError(f"{images_path}: images of {'x'.join(map(str, images.shape[1:]))} pixels; "
                               "expected at least 1x1")
        splits[split] = (images.reshape(images.shape[0], -1).astype(np.float64) / 255.0, labels.astype(np.int64), images_path,
                         images.shape[1:])
    (x_train, y_train, train_path, train_shape), (x_test, y_test, test_path, test_shape) = splits["train"], splits["test"]
    if train_shape != test_shape:
        raise DatasetError(f"{test_path}: images of {'x'.join(map(str, test_shape))} pixels, but {train_path} holds "
                           f"{'x'.join(map(str, train_shape))}; expected the same size in train and test")
    return Dataset("mnist", x_train, y_train, x_test, y_test)


def find_idx_file(data_dir, name: str) -> str:
    """``data_dir/name`` or ``data_dir/name.gz``, whichever exists."""
    folders = []
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
        if os.path.isdir(path):
            folders.append(path)
    if folders:
        raise DatasetError(f"{folders[0]}: is a folder; expected MNIST's IDX file (plain or .gz) of that name")
    raise DatasetError(f"{os.path.join(data_dir, name)}: no such file (nor {name}.gz); MNIST needs {', '.join(n for p in MNIST_FILES.values() for n in p)}")


def read_idx(path, expected_magic: int) -> np.ndarray:
    """The unsigned-byte array stored in the IDX file ``path`` (gzipped when it ends
    in ``.gz``), after checking its magic number, dimensions and payload length. No more
    is read than the header announces, plus one byte to tell trailing bytes: a gzip
    file that inflates to gigabytes costs no more than its header says."""
    expected_dims = expected_magic & 0xFF
    header = 4 + 4 * expected_dims
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as fh:
            raw = _read_up_to(fh, header)
            if len(raw) < 4:
                raise DatasetError(f"{path}: {len(raw)} bytes, too short for an IDX header (expected magic {expected_magic})")
            magic = int.from_bytes(raw[:4], "big")
            if magic != expected_magic:
                raise DatasetError(
                    f"{path}: magic number {magic} (0x{magic:08x}); expected {expected_magic} (0x{expected_magic:08x}, "
                    f"unsigned bytes in {expected_dims} dimension{'s' if expected_dims > 1 else ''})"
                )
            if len(raw) < header:
                raise DatasetError(f"{path}: truncated header ({len(raw)} bytes; expected {header} for {expected_dims} dimensions)")
            dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_dims))
            expected_payload = math.prod(dims)  # Python's integers: no overflow for any header
            data = _read_up_to(fh, expected_payload + 1)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder; expected an IDX file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:  # truncated or not gzip at all
        raise DatasetError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(data) != expected_payload:
        shape = "x".join(map(str, dims))
        if len(data) < expected_payload:
            raise DatasetError(f"{path}: truncated: {len(data)} bytes of data, expected {expected_payload} for dimensions {shape}")
        raise DatasetError(f"{path}: trailing bytes: more data than the {expected_payload} bytes dimensions {shape} hold")
    return np.frombuffer(data, np.uint8).reshape(dims)


def _read_up_to(fh, n: int) -> bytes:
    """At most ``n`` bytes of ``fh``, read a MiB at a time (``read(n)`` may allocate ``n``
    up front, whatever the file holds)."""
    chunks, left = [], n
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (unsigned bytes, 1-D or 3-D) as an IDX file, gzipped when
    ``path`` ends in ``.gz``; the inverse of ``read_idx`` (used by tests and to make
    small MNIST-shaped files)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"array dtype {array.dtype}: expected uint8")
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(data)
