"""The checker's own cost: the default battery of checks on the seed model."""

import warnings

from benchmarks.common import DTYPES, case, implementation, pin_process, skip_reason


def _registered_names():
    from harness.core.registry import implementations

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(implementations())


class TimeCheck:
    params = [_registered_names(), list(DTYPES)]
    param_names = ["implementation", "dtype"]
    timeout = 300
    number = 1
    repeat = (1, 3, 30.0)
    warmup_time = 0.0

    def setup(self, name, dtype):
        from harness.checks.planner import SEED_BATCH

        # The battery's seed-size case, under the planner's rule for the battery.
        reason = skip_reason(name, "seed", SEED_BATCH, dtype)
        if reason:
            raise NotImplementedError(reason)
        pin_process()
        self.impl = implementation(name)
        self.case = case("seed", SEED_BATCH, dtype)

    def time_check(self, name, dtype):
        from harness.checks.runner import run_checks

        run_checks(self.impl, self.case)
