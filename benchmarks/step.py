"""Step, forward, memory and gradient accuracy of every implementation, and of the
worker programs listed in ``workers.json`` (C, JavaScript).

The parameters come from the registry, so a third-party implementation installed
through the ``backprop_harness.impls`` entry point is measured like a built-in one.
Combinations an implementation cannot run (missing dependency, dtype it lacks, a
pure-Python step too slow for the timeout) raise ``NotImplementedError`` in
``setup`` and show as n/a.
"""

import numpy as np

from benchmarks.common import BATCHES, DTYPES, MODELS, Bound, foreign_workers, implementation_names, pin_process


class TimeStep:
    """Forward, loss and backward on a native batch already on the device."""

    params = [implementation_names(), list(MODELS), list(BATCHES), list(DTYPES)]
    param_names = ["implementation", "model", "batch", "dtype"]
    timeout = 180  # torch-compile compiles in setup: seconds per shape

    def setup(self, name, model, batch, dtype):
        pin_process()
        self.bound = Bound(name, model, batch, dtype)

    def time_step(self, name, model, batch, dtype):
        self.bound.step()

    def time_forward(self, name, model, batch, dtype):
        self.bound.forward()

    def peakmem_step(self, name, model, batch, dtype):
        self.bound.step()


class _Bound:
    """Setup shared by the tracks: pinned threads and the implementation bound."""

    param_names = TimeStep.param_names
    timeout = 180

    def setup(self, name, model, batch, dtype):
        pin_process()
        self.bound = Bound(name, model, batch, dtype)


class TrackGradientError(_Bound):
    """How far each implementation's gradients are from the float64 reference."""

    params = TimeStep.params

    def track_max_relative_gradient_error(self, name, model, batch, dtype):
        from harness.core.reference import loss_and_grads

        c = self.bound.case
        got = self.bound.prepared.to_numpy(self.bound.step()).grads
        _, expected = loss_and_grads(c.spec, c.params, c.x, c.y)
        # Normwise per tensor (max |got - expected| / max |expected|), the worst tensor:
        # elementwise ratios explode where a gradient element is ~0.
        return max(
            float(np.max(np.abs(np.asarray(g, np.float64) - e)) / max(np.max(np.abs(e)), np.finfo(np.float64).tiny))
            for got_pair, expected_pair in zip(got, expected)
            for g, e in zip(got_pair, expected_pair)
        )

    track_max_relative_gradient_error.unit = "relative error"


class TrackStepInsideWorker(_Bound):
    """A worker program's step as the worker times it (the protocol's ``evaluate``
    timings): ``TimeStep`` measures the same step from the harness, round trip
    included. Median of at least 10 steps and 0.2 s."""

    params = [list(foreign_workers()), list(MODELS), list(BATCHES), list(DTYPES)]

    def track_step_inside_worker(self, name, model, batch, dtype):
        return float(np.median(self.bound.prepared.timed_steps(self.bound.native, min_runs=10, min_seconds=0.2)))

    track_step_inside_worker.unit = "seconds"
