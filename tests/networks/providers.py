"""Operator providers for the network tests: the operator corpus's correct NumPy
operators (with a plain reshape), optionally with one operator swapped for a bug."""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Input, Mapping
from tests.operator_corpus import entries
from tests.operator_corpus.operator import mapping, single


def reshape() -> Mapping:
    def vjp(inputs, cotangents, shape):
        return (np.reshape(single(cotangents), inputs[0].shape),)

    return Mapping("reshape", lambda x, shape: np.reshape(x, shape), vjp, inputs=[Input((2, 3, 4))],
                   params={"shape": (2, 12)}, dtypes=("float32", "float64"))


def corpus_provider(*swapped) -> dict:
    """``{op name: Mapping}`` of the corpus's correct operators; each operator class in
    ``swapped`` (a corpus bug, or a bug written in a test) replaces the correct
    operator it derives from."""
    provider = {cls.name: mapping(cls()) for cls in entries.OPERATORS}
    provider["reshape"] = reshape()
    for cls in swapped:
        provider[cls.reference_class.name] = mapping(cls())
    return provider
