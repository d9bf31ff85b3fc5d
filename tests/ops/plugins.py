"""Plug-in providers written as a third party would, installed by tests as real
distributions with a ``backprop_harness.ops`` entry point (``install``)."""

WRONG_RELU = '''
import numpy as np


class ReluGradientEverywhere:
    """relu whose backward passes the cotangent through everywhere: relu' taken as 1."""

    def forward(self, x):
        return np.maximum(x, 0)

    def vjp(self, inputs, cotangents):
        return (np.array(cotangents[0], copy=True),)


OPERATORS = {"relu": ReluGradientEverywhere}
'''

BROKEN = '''
raise RuntimeError("this plug-in cannot load")
'''


def install(tmp_path, monkeypatch, name: str, source: str) -> None:
    """Provider ``name`` from ``source`` (its module's text) as an installed plug-in, found
    afresh by this process and by the processes it starts (PYTHONPATH)."""
    import os

    from harness.ops import registry
    from tests import entry_points

    module = f"{name.replace('-', '_')}_module"
    tmp_path.mkdir(parents=True, exist_ok=True)
    entry_points.install(tmp_path, monkeypatch, {name: f"{module}:OPERATORS"}, {module: source},
                         name=f"{name}-dist", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.setattr(registry, "_PROVIDERS", {})  # found again, with the plug-in
    monkeypatch.setattr(registry, "_LOAD_FAILURES", {})
