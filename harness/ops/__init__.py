"""The operator database: one record per operator (``operator(name)``: reference forward,
sample inputs, dtypes, non-differentiable inputs, parameters) and the providers that
compute forward and backward (``provider(name)``: numpy, torch, pure-python and plug-ins
of the entry-point group ``backprop_harness.ops``). ``mapping(op, provider)`` is a
``harness.Mapping`` the mapping checks judge."""

from harness.ops.catalog import RECORDS
from harness.ops.providers import (
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
from harness.ops.records import OpRecord

__all__ = ["ENTRY_POINT_GROUP", "RECORDS", "OpRecord", "Provider", "mapping", "operator", "operators", "provider",
           "providers", "providers_of", "register_provider", "unregister_provider"]


def operators() -> list[str]:
    """The names of every operator, in the order ``backprop-harness ops`` lists them."""
    return list(RECORDS)
