"""Speed: how a step is timed, the same way for ``backprop-harness bench`` and the asv
suite under ``benchmarks/``."""
