"""Fault injection: the command line fed bad input and faulty plug-ins, the way a
careless or hostile user or plug-in author would.

Every case asserts the exit status, and where the input is at fault (a bad case file,
option, declaration or data set) that stderr is exactly one line, naming the bad value,
with no traceback anywhere. A faulty plug-in is that plug-in's ERROR or FAIL (exit 1),
the run goes on, and nothing it does leaves the harness changed. Runs are in-process
(``main([...])``); a subprocess only where the process boundary is the point (a real
SIGINT). The classes and their counts are listed by ``CLASSES`` at the end.
"""

import io
import json
import os
import signal
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from harness.commands.main import main
from harness.core import case_files
from harness.core.cases import make_case
from harness.core.spec import NetworkSpec
from harness.training.datasets import write_idx
from tests import fault_impls
from tests.training.test_datasets import tiny_mnist

SPEC = NetworkSpec((3, 2, 2), ("relu", "identity"), "cross_entropy")
SMALL = ["--sizes", "3,2,2", "--batch", "3"]


@pytest.fixture(autouse=True)
def _wide_tables(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def _name(attr):
    """The name a plug-in of ``tests.fault_impls`` runs under: its own, or module:attr."""
    own = getattr(getattr(fault_impls, attr), "name", None)
    return own if isinstance(own, str) else f"tests.fault_impls:{attr}"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out, err


def _refused(capsys, *argv, words):
    """Bad input: exit 2, one line on stderr naming it, no traceback."""
    code, out, err = _run(capsys, *argv)
    assert code == 2, out + err
    assert err.count("\n") == 1 and err.startswith("backprop-harness: error: "), err
    assert words in err, err
    return err


# --- bad case files ------------------------------------------------------------------------------


def _arrays(**changes):
    case = make_case(SPEC, 3, seed=1)
    arrays = {"sizes": np.array(SPEC.sizes), "activations": np.array(SPEC.activations), "loss": np.array(SPEC.loss),
              "x": case.x, "y": case.y, "W0": case.params[0][0], "b0": case.params[0][1], "W1": case.params[1][0],
              "b1": case.params[1][1]}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _npz(path, **changes):
    np.savez(path, **_arrays(**changes))


def _corrupt_member(path):
    np.savez_compressed(path, **_arrays())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5 : start + 25] = bytes(20)  # the deflate stream of x
    path.write_bytes(bytes(data))


def _header_claims_terabytes(path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3)})
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in _arrays().items():
            if key != "x":
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f"{key}.npy", buffer.getvalue())
        archive.writestr("x.npy", header.getvalue() + bytes(16))


def _member_not_an_array(path):
    _npz(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("readme.txt", "hello")


CASE_FILES = [
    ("text", lambda p: p.write_text("not a zip"), "not an .npz (zip) file"),
    ("empty", lambda p: p.write_bytes(b""), "not an .npz (zip) file"),
    ("plain-npy", lambda p: np.save(open(p, "wb"), np.zeros(3)), "a single .npy array, not a case"),
    ("truncated-zip", lambda p: (_npz(p), p.write_bytes(p.read_bytes()[:200])), "not an .npz (zip) file"),
    ("corrupt-member", _corrupt_member, "corrupt (zlib.error: Error -3 while decompressing data"),
    ("member-not-an-array", _member_not_an_array, "member 'readme.txt' is not an array"),
    ("header-claims-terabytes", _header_claims_terabytes, "x's header claims shape (1000000000000, 3)"),
    ("pickled-objects", lambda p: _npz(p, x=np.array([object()] * 3)), "x holds Python objects"),
    ("sizes-as-floats", lambda p: _npz(p, sizes=np.array([3.0, 2.0, 2.0])), "sizes is float64 of shape (3,); expected a 1-D array of integers"),
    ("activations-as-numbers", lambda p: _npz(p, activations=np.array([1, 2])), "activations is int64 of shape (2,); expected strings"),
    ("two-losses", lambda p: _npz(p, loss=np.array(["mse", "mse"])), "loss is <U3 of shape (2,); expected a string"),
    ("seed-fraction", lambda p: _npz(p, seed=np.array(1.5)), "seed is float64 of shape (); expected an integer scalar"),
    ("seed-negative", lambda p: _npz(p, seed=np.array(-1)), "seed -1 is out of range"),
    ("x-integers", lambda p: _npz(p, x=np.zeros((3, 3), np.int64)), "x is int64; expected float32 or float64"),
    ("w-complex", lambda p: _npz(p, W0=np.zeros((2, 3), complex)), "W0 is complex128; expected float64 like x"),
    ("x-nan", lambda p: _npz(p, x=np.full((3, 3), np.nan)), "x holds 9 non-finite value(s)"),
    ("w-infinite", lambda p: _npz(p, W1=np.full((2, 2), np.inf)), "W1 holds 4 non-finite value(s)"),
    ("empty-batch", lambda p: _npz(p, x=np.zeros((0, 3)), y=np.zeros(0, np.int64)), "x holds an empty batch"),
    ("unknown-key", lambda p: _npz(p, w0=np.zeros((2, 3))), "unexpected key(s) w0"),
    ("zero-width", lambda p: _npz(p, sizes=np.array([3, 0, 2])), "width 0 is not an integer >= 1"),
    ("labels-out-of-range", lambda p: _npz(p, y=np.array([0, 1, 7])), "labels must lie in 0..1, found 0..7"),
    ("a-directory", lambda p: p.mkdir(), "is a directory; expected an .npz file"),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in CASE_FILES], ids=[c[0] for c in CASE_FILES])
def test_a_bad_case_file_is_refused_in_one_line(capsys, tmp_path, make, words):
    path = tmp_path / "case.npz"
    make(path)
    err = _refused(capsys, "check", "--impl", "numpy", "--case-file", path, words=words)
    assert str(path) in err


def test_a_case_file_beyond_the_decompressed_cap_is_refused_before_decompressing(capsys, tmp_path, monkeypatch):
    path = tmp_path / "case.npz"
    _npz(path)
    monkeypatch.setattr(case_files, "MAX_CASE_BYTES", 1000)  # the 2 GiB cap, scaled to a small file
    _refused(capsys, "check", "--impl", "numpy", "--case-file", path, words="beyond the 1,000-byte cap on case files")


# --- bad options -----------------------------------------------------------------------------------------

OPTIONS = [
    (["check", "--sizes", "4,1000000000,2"], "checking 4-1000000000-2 relu,identity cross_entropy at batch 64: needs about"),
    (["check", "--sizes", "4,3,2", "--batch", "100000000000"], "more than the"),
    (["check", "--sizes", "4,,2"], "expected comma-separated integers"),
    (["check", "--sizes", "4,-3,2"], "width -3 is not an integer >= 1"),
    (["check", "--isolate", "--timeout", "inf"], "--timeout: inf is not a finite number > 0"),
    (["check", "--isolate", "--timeout", "nan"], "--timeout: nan is not a finite number > 0"),
    (["check", "--isolate", "--timeout", "1e9"], "--timeout: 1e+09 is more than a day"),
    (["check", "--seed", "-1"], "--seed: -1 is not in 0..9,223,372,036,854,775,807"),
    (["check", *SMALL, "--isolate", "--seed", str(2**63)], "--seed: 9223372036854775808 is not in 0.."),
    (["check", "--seed", "abc"], "--seed: 'abc' is not an integer"),
    (["check", "--probes", "0"], "--probes: 0 is not in 1..10,000"),
    (["check", "--logit-scale", "0"], "--logit-scale: 0.0 is not a finite number > 0"),
    (["check", "--logit-scale", "inf"], "--logit-scale: inf is not a finite number > 0"),
    (["check", "--logit-scale", "-5"], "--logit-scale: -5.0 is not a finite number > 0"),
    (["check", "--impl", "pure-python", "--device", "cuda", *SMALL], "--device cuda: pure-python does not declare it"),
    (["bench", "--threads", "5000"], "--threads: 5000 is not in 1..1,024"),
    (["bench", "--min-time", "inf"], "--min-time: inf is not a finite number > 0"),
    (["bench", "--batch", "1,0"], "batch sizes must be >= 1, got 0"),
    (["bench", "--sizes", "4,1000000000,2", "--batch", "1"], "timing 4-1000000000-2"),
    (["bench", "--plot", "speed.svg"], "--plot 'speed.svg': expected a .png file name"),
    (["bench", "--plot", "/nonexistent/folder/speed.png"], "--plot /nonexistent/folder/speed.png: no such folder"),
    (["train", "--json", "/nonexistent/folder/run.json"], "--json /nonexistent/folder/run.json: no such folder"),
    (["train", "--hidden", "1000000000", "--epochs", "1"], "training 64-1000000000-10 relu,identity cross_entropy at batch 32"),
    (["train", "--lr", "nan"], "--lr: nan is not a finite number > 0"),
    (["train", "--momentum", "1"], "--momentum: 1.0 is not in [0, 1)"),
    (["train", "--epochs", "0"], "--epochs: 0 is not >= 1"),
    (["train", "--seed", str(2**64)], "--seed: 18446744073709551616 is not in 0.."),
]


@pytest.mark.parametrize("argv, words", OPTIONS, ids=[" ".join(a)[:60] for a, _ in OPTIONS])
def test_a_bad_option_is_refused_in_one_line(capsys, argv, words):
    _refused(capsys, *argv, words=words)


def _foreign(path):
    path.write_text("the user's own notes")


OUTPUTS = [
    ("json-onto-a-directory", lambda d: ["--json", d], "is a directory"),
    ("json-in-a-missing-folder", lambda d: ["--json", d / "no" / "r.json"], "no such folder"),
    ("json-over-a-foreign-file", lambda d: (_foreign(d / "r.json"), ["--json", d / "r.json"])[1], "was not written by backprop-harness"),
    ("save-case-onto-a-directory", lambda d: ["--save-case", d], "is a directory"),
    ("save-case-over-a-foreign-file", lambda d: (_foreign(d / "c.npz"), ["--save-case", d / "c.npz"])[1], "not replacing it"),
    ("json-and-save-case-one-file", lambda d: ["--json", d / "x", "--save-case", d / "x"], "the same file as --json"),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in OUTPUTS], ids=[c[0] for c in OUTPUTS])
def test_a_bad_output_path_is_refused_before_any_work_and_nothing_is_replaced(capsys, tmp_path, make, words):
    argv = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    _refused(capsys, "check", "--impl", "numpy", *SMALL, *argv, words=words)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


# --- bad plug-in declarations --------------------------------------------------------------------------------

DECLARATIONS = [
    ("CapabilitiesNone", "capabilities-none: capabilities=None; expected harness.Capabilities(...)"),
    ("capabilities_none", "tests.fault_impls:capabilities_none: capabilities=None"),
    ("capabilities_a_dict", "capabilities={'dtypes': ('float64',)}; expected harness.Capabilities(...)"),
    ("dtypes_as_text", "dtypes_as_text: attribute dtypes='float64': expected a collection of names"),
    ("dtypes_unknown", "attribute dtypes: unknown dtype 'float16'; allowed: float32, float64"),
    ("activations_unknown", "attribute activations: unknown activation 'softplus'"),
    ("activations_not_names", "attribute activations: 1 is not a name"),
    ("NameNotText", "tests.fault_impls:NameNotText: name=42; expected a non-empty string"),
    ("InitRaises", "could not instantiate InitRaises(): cannot find my GPU"),
    ("InitExits", "InitExits: its declaration raised SystemExit: 4"),
    ("CapabilitiesPropertyRaises", "its declaration raised KeyboardInterrupt"),
    ("DefaultDeviceRaises", "default-device-raises: default_device() raised RuntimeError: no device query on this platform"),
]

# Capabilities(...) that raise where they are built: in a plug-in module, at its import.
BAD_CAPABILITIES = [
    ("nondeterminism=-1.0", "Capabilities.nondeterminism=-1.0: expected a finite number >= 0"),
    ("nondeterminism=float('nan')", "Capabilities.nondeterminism=nan"),
    ("nondeterminism='1e-3'", "Capabilities.nondeterminism='1e-3'"),
    ("input_grad='yes'", "Capabilities.input_grad='yes': expected True or False"),
    ("devices='cuda'", "Capabilities.devices='cuda': expected a collection of names"),
    ("devices=()", "Capabilities.devices=(): expected at least one device name"),
    ("max_multiply_adds=1.5", "Capabilities.max_multiply_adds=1.5: expected None or an integer >= 0"),
    ("deterministic=True, nondeterminism=0.1",
     "Capabilities(deterministic=True, nondeterminism=0.1): a bitwise-deterministic implementation declares no nondeterminism"),
]


@pytest.mark.parametrize("name, words", DECLARATIONS, ids=[d[0] for d in DECLARATIONS])
def test_a_wrong_declaration_is_one_line_naming_the_plug_in_and_the_field(capsys, name, words):
    _refused(capsys, "check", "--impl", f"tests.fault_impls:{name}", *SMALL, words=words)


@pytest.mark.parametrize("fields, words", BAD_CAPABILITIES, ids=[c[0] for c in BAD_CAPABILITIES])
def test_capabilities_of_the_wrong_type_fail_the_plug_ins_import_in_one_line(capsys, tmp_path, monkeypatch, fields, words):
    module = f"declares_{abs(hash(fields))}"
    (tmp_path / f"{module}.py").write_text(
        "from harness import Capabilities\nfrom tests.fault_impls import right\n\n"
        f"def backprop(spec, params, x, y):\n    return right(spec, params, x, y)\n\nbackprop.capabilities = Capabilities({fields})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _refused(capsys, "check", "--impl", f"{module}:backprop", *SMALL, words=f"cannot import module '{module}': ImplementationError: {words}")


@pytest.mark.parametrize("name, words", [("UnavailableReasonRaises", "unavailable_reason raised SystemExit: probing the driver exits"),
                                         ("UnavailableReasonNotText", "unavailable_reason returned 42; expected None or a string")])
def test_an_availability_probe_that_misbehaves_makes_a_named_plug_in_fail(capsys, name, words):
    code, out, _ = _run(capsys, "check", "--impl", f"tests.fault_impls:{name}", *SMALL)
    assert code == 1 and words in " ".join(out.split())


# --- bad plug-in returns --------------------------------------------------------------------------------------

RETURNS = {
    "returns_none": "ERROR", "returns_four_things": "ERROR", "returns_a_dict": "ERROR", "returns_a_generator": "ERROR",
    "loss_is_text": "ERROR", "loss_is_none": "ERROR", "loss_per_sample": "ERROR", "loss_exits_when_read": "ERROR",
    "grads_is_none": "ERROR", "grads_missing_a_layer": "FAIL", "grads_hold_none": "ERROR", "grads_are_ragged_lists": "ERROR",
    "grads_are_objects": "ERROR", "grads_are_complex": "FAIL", "grads_are_integers": "FAIL", "grads_are_nan": "FAIL",
    "grads_are_huge": "FAIL", "grads_are_transposed": "FAIL", "grads_are_scalars": "FAIL", "ToNumpyReturnsText": "ERROR",
    "PreparedWithout": "ERROR",
}


@pytest.mark.parametrize("name, verdict", RETURNS.items(), ids=list(RETURNS))
def test_a_plug_in_returning_what_the_protocol_forbids_is_its_error_or_failure(capsys, name, verdict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plug-in's own overflow warnings
        code, out, _ = _run(capsys, "check", "--impl", f"tests.fault_impls:{name}", "--impl", "numpy", *SMALL)
    assert code == 1
    table = " ".join(out.split())
    assert f" {verdict} " in table
    assert "1 of 2 implementation/case runs passed, 1 failed" in table  # numpy ran after it, and passed


# --- plug-ins that exit or raise a BaseException --------------------------------------------------------------

LEAVING = {
    "exits_0": "step raised SystemExit: 0", "exits_3": "step raised SystemExit: 3",
    "exits_with_text": "step raised SystemExit: giving up", "calls_builtin_exit": "step raised SystemExit: 5",
    "ExitsInPrepare": "prepare raised SystemExit: 0", "ExitsInBatch": "step raised SystemExit: 0",
}
RAISING = {
    "raises_keyboard_interrupt": "step raised KeyboardInterrupt", "raises_generator_exit": "step raised GeneratorExit",
    "raises_memory_error": "step raised MemoryError", "raises_custom_base_exception": "step raised Custom: out of band",
    "recurses_forever": "step raised RecursionError: maximum recursion depth exceeded",
    "raises_unprintable": "step raised Unprintable: <the message could not be read: SystemExit>",
    "raises_a_huge_message": "... (10,000,000 characters)",
}


@pytest.mark.parametrize("name, words", {**LEAVING, **RAISING}.items(), ids=list({**LEAVING, **RAISING}))
def test_a_plug_in_that_exits_or_raises_is_its_error_and_the_run_goes_on(capsys, tmp_path, name, words):
    report = tmp_path / "report.json"
    code, out, _ = _run(capsys, "check", "--impl", f"tests.fault_impls:{name}", "--impl", "numpy", *SMALL, "--json", report)
    assert code == 1
    runs = json.loads(report.read_text())["runs"]
    assert [r["verdict"] for r in runs] == ["ERROR", "PASS"]  # numpy still ran, and its results were written
    assert words in runs[0]["results"][0]["message"]
    assert max(len(line) for line in out.splitlines()) < 1000  # a huge message is cut, not printed whole


def test_the_users_ctrl_c_still_stops_the_run_with_exit_130():
    # a real SIGINT, as Ctrl-C sends: only a process of its own can take one
    done = subprocess.run([sys.executable, "-m", "harness", "check", "--impl", "tests.fault_impls:sends_itself_sigint", *SMALL],
                          capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 130 and done.stderr == "backprop-harness: interrupted\n", done.stderr


# --- floods ---------------------------------------------------------------------------------------------------


class _CountingSink(io.TextIOBase):
    """A standard stream that counts what it is given and keeps none of it."""

    def __init__(self):
        self.written = 0

    def write(self, text):
        self.written += len(text)
        return len(text)


@pytest.mark.parametrize("name, stream", [("prints_50_mb", "stdout"), ("writes_50_mb_to_stderr", "stderr")])
def test_a_plug_in_that_floods_its_output_is_not_held_in_memory(monkeypatch, name, stream):
    sink = _CountingSink()
    monkeypatch.setattr(sys, stream, sink)
    monkeypatch.setattr(getattr(fault_impls, name), "done", False, raising=False)
    tracemalloc.start()
    try:
        code = main(["check", "--impl", f"tests.fault_impls:{name}", *SMALL])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0  # otherwise right: the flood costs nothing but the output
    assert sink.written >= fault_impls.FLOOD_BYTES
    assert peak < fault_impls.FLOOD_BYTES / 5, f"{peak:,} bytes at the peak"


# --- plug-ins that change global state ------------------------------------------------------------------------


def _state():
    return (np.geterr(), list(warnings.filters), dict(os.environ), os.getcwd(), list(sys.path), sys.getrecursionlimit(),
            sys.stdout, signal.getsignal(signal.SIGINT))


GLOBAL_STATE = ["sets_numpy_errors_to_raise", "turns_warnings_into_errors", "clears_the_environment", "empties_sys_path",
                "lowers_the_recursion_limit", "closes_stdout", "ignores_ctrl_c", "changes_directory"]


@pytest.mark.parametrize("name", GLOBAL_STATE)
def test_global_state_a_plug_in_changes_is_put_back_and_judging_is_unharmed(capsys, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # what main() itself adds, so that module:attr finds the cwd
    before = _state()
    # a relative --json: a plug-in that changes directory must not move it
    # large logits: the oracle's exp underflows, which np.seterr(all="raise") would make an exception
    code, out, _ = _run(capsys, "check", "--impl", f"tests.fault_impls:{name}", "--sizes", "6,5,3", "--batch", "5",
                        "--logit-scale", "1000", "--json", "report.json")
    assert _state() == before
    assert code == 0, out  # the answer is right, and so is the judging
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is True


def test_a_plug_in_that_mutates_its_inputs_fails_and_the_callers_arrays_are_untouched(capsys):
    code, out, _ = _run(capsys, "check", "--impl", "tests.fault_impls:mutates_its_inputs", *SMALL)
    assert code == 1 and "inputs_not_mutated FAIL" in out


# --- bench and train ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exits_0", "raises_keyboard_interrupt", "ExitsInPrepare"])
def test_bench_marks_the_failing_implementation_and_keeps_everyone_elses_timings(capsys, tmp_path, name):
    path = tmp_path / "speed.json"
    code, out, _ = _run(capsys, "bench", "--impl", f"tests.fault_impls:{name}", "--impl", "numpy", "--sizes", "3,2,2",
                        "--batch", "2", "--dtype", "float64", "--min-time", "0.001", "--min-samples", "2", "--json", path)
    assert code == 1 and "ERROR" in out
    timings = {t["implementation"]: t for t in json.loads(path.read_text())["timings"]}
    assert timings["numpy"]["median"] > 0 and timings["numpy"]["error"] == ""
    assert "raised" in timings[_name(name)]["error"] and timings[_name(name)]["median"] is None


@pytest.mark.parametrize("name", ["exits_0", "raises_generator_exit", "ExitsInSetParams"])
def test_train_marks_the_failing_run_and_writes_everyone_elses(capsys, tmp_path, name):
    tiny_mnist(tmp_path, n_train=12, n_test=4)
    path = tmp_path / "train.json"
    code, out, _ = _run(capsys, "train", "--data", "mnist", "--data-dir", tmp_path, "--hidden", "4", "--epochs", "1",
                        "--batch-size", "4", "--impl", "numpy", "--impl", f"tests.fault_impls:{name}", "--json", path)
    assert code == 1 and f"{_name(name)}: ERROR: " in out
    runs = json.loads(path.read_text())["implementations"]
    assert runs["numpy"]["error"] is None and runs["numpy"]["steps"] == 3
    assert runs[_name(name)]["error"].startswith(("SystemExit", "GeneratorExit"))


# --- bad data sets --------------------------------------------------------------------------------------------


def _mnist(directory, change):
    tiny_mnist(directory, n_train=12, n_test=4)
    change(directory)


DATASETS = [
    ("missing-file", lambda d: os.remove(d / "t10k-labels-idx1-ubyte"), "t10k-labels-idx1-ubyte: no such file"),
    ("bad-magic", lambda d: (d / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x01" + bytes(20)), "magic number 2049"),
    ("truncated", lambda d: (d / "t10k-images-idx3-ubyte").write_bytes((d / "t10k-images-idx3-ubyte").read_bytes()[:-7]),
     "truncated: 3129 bytes of data, expected 3136"),
    ("count-mismatch", lambda d: write_idx(d / "train-labels-idx1-ubyte", np.zeros(11, np.uint8)), "11 labels, but"),
    ("label-out-of-range", lambda d: write_idx(d / "t10k-labels-idx1-ubyte", np.array([1, 2, 10, 3], np.uint8)),
     "label 10 at index 2; expected labels 0..9"),
    ("test-images-of-another-size", lambda d: write_idx(d / "t10k-images-idx3-ubyte", np.zeros((4, 20, 20), np.uint8)),
     "images of 20x20 pixels, but"),
    ("no-images", lambda d: (write_idx(d / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8)),
                             write_idx(d / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))), "holds no images"),
    ("not-gzip", lambda d: (os.remove(d / "t10k-images-idx3-ubyte"), (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"plain")),
     "cannot read (BadGzipFile"),
]


@pytest.mark.parametrize("change, words", [d[1:] for d in DATASETS], ids=[d[0] for d in DATASETS])
def test_a_bad_data_set_is_refused_in_one_line_naming_the_file(capsys, tmp_path, change, words):
    _mnist(tmp_path, change)
    _refused(capsys, "train", "--data", "mnist", "--data-dir", tmp_path, "--hidden", "4", "--epochs", "1", "--batch-size", "4",
             "--impl", "numpy", words=words)


@pytest.mark.parametrize("argv, words", [(["--data", "cifar"], "--data 'cifar': unknown data set"),
                                         (["--data", "mnist"], "--data mnist needs --data-dir"),
                                         (["--batch-size", "100000"], "larger than the 1437 training samples")],
                         ids=["unknown", "no-dir", "batch-beyond-the-data"])
def test_a_bad_data_option_is_refused_in_one_line(capsys, argv, words):
    _refused(capsys, "train", "--impl", "numpy", *argv, words=words)


# --- the count per class, for the closing note ------------------------------------------------------------------

CLASSES = {
    "bad case files": len(CASE_FILES) + 1,
    "bad options (and output paths)": len(OPTIONS) + len(OUTPUTS),
    "bad plug-in returns": len(RETURNS),
    "bad plug-in declarations": len(DECLARATIONS) + len(BAD_CAPABILITIES) + 2,
    "plug-ins that exit": len(LEAVING) + 4,  # + bench (exits_0, ExitsInPrepare), train (exits_0, ExitsInSetParams)
    "plug-ins that raise a BaseException": len(RAISING) + 1 + 2,  # + a real SIGINT, bench and train
    "print floods": 2,
    "global state and mutation": len(GLOBAL_STATE) + 1,
    "bad data sets": len(DATASETS) + 3,
}


def test_the_suite_covers_every_class_with_at_least_60_cases():
    assert all(CLASSES.values()) and sum(CLASSES.values()) >= 60, CLASSES
