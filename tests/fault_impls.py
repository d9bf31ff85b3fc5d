"""Plug-ins written by a careless or hostile author, for the fault-injection suite
(``tests/test_fault_injection.py`` names them ``tests.fault_impls:NAME``).

Each is small and does one wrong thing: returns what the protocol does not allow,
declares capabilities of the wrong type, exits, raises a ``BaseException``, floods
the output, or changes global state. Apart from that wrong thing, each computes the
right answer (the float64 reference), so a run whose only problem is the fault shows
where the harness put it.
"""

import os
import signal
import sys
import warnings

import numpy as np

from harness.core import reference
from harness.core.protocol import Implementation, Prepared, StepResult


def right(spec, params, x, y):
    """The correct answer, in the dtype asked for."""
    loss, grads = reference.loss_and_grads(spec, params, x, y)
    return x.dtype.type(loss), [(dW.astype(x.dtype), db.astype(x.dtype)) for dW, db in grads]


def _returning(value_of):
    """A plain-function plug-in whose step returns ``value_of(right answer)``."""

    def backprop(spec, params, x, y):
        return value_of(*right(spec, params, x, y))

    return backprop


# --- bad returns -------------------------------------------------------------------------------

returns_none = _returning(lambda loss, grads: None)
returns_four_things = _returning(lambda loss, grads: (loss, grads, None, "extra"))
returns_a_dict = _returning(lambda loss, grads: {"loss": loss, "grads": grads})
returns_a_generator = _returning(lambda loss, grads: (v for v in (loss, grads)))
loss_is_text = _returning(lambda loss, grads: ("0.5", grads))
loss_is_none = _returning(lambda loss, grads: (None, grads))
loss_per_sample = _returning(lambda loss, grads: (np.full(3, loss), grads))
grads_is_none = _returning(lambda loss, grads: (loss, None))
grads_missing_a_layer = _returning(lambda loss, grads: (loss, grads[:-1]))
grads_hold_none = _returning(lambda loss, grads: (loss, [(None, None) for _ in grads]))
grads_are_ragged_lists = _returning(lambda loss, grads: (loss, [([[1.0], [1.0, 2.0]], db) for _, db in grads]))
grads_are_objects = _returning(lambda loss, grads: (loss, [(dW.astype(object), db) for dW, db in grads]))
grads_are_complex = _returning(lambda loss, grads: (loss, [(dW + 0j, db) for dW, db in grads]))
grads_are_integers = _returning(lambda loss, grads: (loss, [(np.rint(dW).astype(np.int64), db) for dW, db in grads]))
grads_are_nan = _returning(lambda loss, grads: (loss, [(np.full_like(dW, np.nan), db) for dW, db in grads]))
grads_are_huge = _returning(lambda loss, grads: (loss, [(dW * 1e300 * 1e300, db) for dW, db in grads]))
grads_are_transposed = _returning(lambda loss, grads: (loss, [(dW.T, db) for dW, db in grads]))
grads_are_scalars = _returning(lambda loss, grads: (loss, [(0.0, 0.0) for _ in grads]))


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise SystemExit("converting me ends the interpreter")

    def __float__(self):
        raise SystemExit("converting me ends the interpreter")


loss_exits_when_read = _returning(lambda loss, grads: (_Unconvertible(), grads))


class ToNumpyReturnsText(Implementation):
    name = "to-numpy-returns-text"

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        prepared = _RightPrepared(spec, params)
        prepared.to_numpy = lambda result: "a string"
        return prepared


class _RightPrepared(Prepared):
    def __init__(self, spec, params):
        self.spec, self.params = spec, [(W, b) for W, b in params]

    def step(self, batch):
        x, y = batch
        return StepResult(*right(self.spec, self.params, x, y))

    def set_params(self, params):
        self.params = [(W, b) for W, b in params]


class PreparedWithout(Implementation):
    """An implementation whose ``prepare`` returns ``None``."""

    name = "prepare-returns-none"

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return None


# --- bad declarations ------------------------------------------------------------------------------


def _declaring(**attributes):
    def backprop(spec, params, x, y):
        return right(spec, params, x, y)

    for key, value in attributes.items():
        setattr(backprop, key, value)
    return backprop


capabilities_none = _declaring(capabilities=None)  # a function: None means "not declared"
dtypes_as_text = _declaring(dtypes="float64")
dtypes_unknown = _declaring(dtypes=("float16",))
activations_unknown = _declaring(activations=("relu", "softplus"))
activations_not_names = _declaring(activations=(1, 2))
capabilities_a_dict = _declaring(capabilities={"dtypes": ("float64",)})


class _Declares(Implementation):
    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return _RightPrepared(spec, params)


class CapabilitiesNone(_Declares):
    name = "capabilities-none"
    capabilities = None


class NameNotText(_Declares):
    name = 42


class InitRaises(_Declares):
    name = "init-raises"

    def __init__(self):
        raise RuntimeError("cannot find my GPU")


class InitExits(_Declares):
    name = "init-exits"

    def __init__(self):
        sys.exit(4)


class CapabilitiesPropertyRaises(_Declares):
    name = "capabilities-property-raises"

    @property
    def capabilities(self):
        raise KeyboardInterrupt  # not the user's: no SIGINT was received


class DefaultDeviceRaises(_Declares):
    name = "default-device-raises"

    def default_device(self):
        raise RuntimeError("no device query on this platform")


class UnavailableReasonRaises(_Declares):
    name = "unavailable-reason-raises"

    def unavailable_reason(self, device=None):
        raise SystemExit("probing the driver exits")


class UnavailableReasonNotText(_Declares):
    name = "unavailable-reason-not-text"

    def unavailable_reason(self, device=None):
        return 42


# --- exits and BaseExceptions ---------------------------------------------------------------------


def _raising(make):
    def backprop(spec, params, x, y):
        raise make()

    return backprop


exits_0 = _raising(lambda: SystemExit(0))
exits_3 = _raising(lambda: SystemExit(3))
exits_with_text = _raising(lambda: SystemExit("giving up"))
raises_keyboard_interrupt = _raising(KeyboardInterrupt)
raises_generator_exit = _raising(GeneratorExit)
raises_memory_error = _raising(MemoryError)


class Custom(BaseException):
    """Neither an Exception nor any of the built-in BaseExceptions."""


raises_custom_base_exception = _raising(lambda: Custom("out of band"))
raises_a_huge_message = _raising(lambda: RuntimeError("x" * 10_000_000))


class Unprintable(Exception):
    def __str__(self):
        raise SystemExit("even printing me exits")


raises_unprintable = _raising(Unprintable)


def recurses_forever(spec, params, x, y):
    return recurses_forever(spec, params, x, y)


def calls_builtin_exit(spec, params, x, y):
    exit(5)  # the site builtin, as a careless script would


class ExitsInPrepare(_Declares):
    name = "exits-in-prepare"

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        sys.exit(0)


class ExitsInBatch(_Declares):
    name = "exits-in-batch"

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        prepared = _RightPrepared(spec, params)
        prepared.batch = lambda x, y: sys.exit(0)
        return prepared


class ExitsInSetParams(_Declares):
    """Fine for checks; exits when training hands it the updated parameters."""

    name = "exits-in-set-params"

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        prepared = _RightPrepared(spec, params)
        prepared.set_params = lambda params: sys.exit(0)
        return prepared


def sends_itself_sigint(spec, params, x, y):
    """What the user's Ctrl-C looks like from inside: a real SIGINT."""
    os.kill(os.getpid(), signal.SIGINT)
    return right(spec, params, x, y)


# --- floods ------------------------------------------------------------------------------------------

FLOOD_BYTES = 50 * 2**20
_CHUNK = "x" * 2**20


def prints_50_mb(spec, params, x, y):
    if not getattr(prints_50_mb, "done", False):  # once per process: the flood, not the time it takes
        prints_50_mb.done = True
        for _ in range(FLOOD_BYTES // len(_CHUNK)):
            print(_CHUNK, end="")  # no newline: a line-buffering display would hold all of it
    return right(spec, params, x, y)


def writes_50_mb_to_stderr(spec, params, x, y):
    if not getattr(writes_50_mb_to_stderr, "done", False):
        writes_50_mb_to_stderr.done = True
        for _ in range(FLOOD_BYTES // len(_CHUNK)):
            sys.stderr.write(_CHUNK)
    return right(spec, params, x, y)


# --- global state ------------------------------------------------------------------------------------


def _changing(change):
    """Computes the right answer, then changes something global on its way out."""

    def backprop(spec, params, x, y):
        answer = right(spec, params, x, y)
        change()
        return answer

    return backprop


sets_numpy_errors_to_raise = _changing(lambda: np.seterr(all="raise"))
turns_warnings_into_errors = _changing(lambda: warnings.simplefilter("error"))
clears_the_environment = _changing(os.environ.clear)
empties_sys_path = _changing(lambda: sys.path.clear())
lowers_the_recursion_limit = _changing(lambda: sys.setrecursionlimit(60))
closes_stdout = _changing(lambda: setattr(sys, "stdout", None))
ignores_ctrl_c = _changing(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


def changes_directory(spec, params, x, y):
    os.chdir(os.path.dirname(os.path.abspath(__file__)))  # a relative --json would land here
    return right(spec, params, x, y)


def mutates_its_inputs(spec, params, x, y):
    result = right(spec, params, x, y)
    x *= 2.0
    return result
