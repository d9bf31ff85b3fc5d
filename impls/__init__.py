"""The built-in implementations; importing this package registers them."""

from harness.registry import register
from impls.numpy_impl import NumpyImplementation
from impls.pure_python_impl import PurePythonImplementation
from impls.torch_compile_impl import TorchCompileImplementation
from impls.torch_impl import TorchImplementation

BUILTINS = (
    PurePythonImplementation(),
    NumpyImplementation(),
    TorchImplementation(),
    TorchCompileImplementation(),
)
for _impl in BUILTINS:
    register(_impl)
