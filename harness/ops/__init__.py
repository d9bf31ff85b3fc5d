"""The operator database: one record per operator (``operator(name)``: reference forward,
sample inputs, dtypes, non-differentiable inputs, parameters) and the providers that
compute forward and backward (``provider(name)``: numpy, torch, pure-python and plug-ins
of the entry-point group ``backprop_harness.ops``). ``mapping(op, provider)`` is a
``harness.Mapping`` the mapping checks judge; ``harness.ops:conv2d@numpy`` names that
mapping wherever a ``module:attr`` is taken (``check --mapping``, reproduce commands)."""

from harness.ops.catalog import RECORDS
from harness.ops.records import OpRecord
from harness.ops.registry import (
    ENTRY_POINT_GROUP,
    Provider,
    mapping,
    operator,
    provider,
    providers,
    providers_of,
    register_provider,
    unregister_provider,
)

__all__ = ["ENTRY_POINT_GROUP", "RECORDS", "OpRecord", "Provider", "mapping", "operator", "operators", "provider",
           "providers", "providers_of", "register_provider", "unregister_provider"]


def operators() -> list[str]:
    """The names of every operator, in the order ``backprop-harness ops`` lists them."""
    return list(RECORDS)


def __getattr__(name: str):
    """``OP@PROVIDER`` (``harness.ops:conv2d@numpy``): that operator's mapping, so that a
    reproduce command can name it as ``--mapping module:attr``."""
    op_name, at, provider_name = name.partition("@")
    if not at:
        raise AttributeError(f"module 'harness.ops' has no attribute {name!r}")
    return mapping(op_name, provider_name)
