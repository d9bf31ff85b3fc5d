"""Result records: what a check found, per tensor and per coordinate."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class Verdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the implementation raised
    TIMEOUT = "TIMEOUT"  # its worker ran past the time limit
    CRASHED = "CRASHED"  # its worker died (any exit status, a signal)
    SKIP = "SKIP"  # the check does not apply; never counted as passed
    # The answer cannot be judged in this dtype: the tolerance a correct answer needs is
    # not finite, or not smaller than the values it judges (a wrong answer would pass).
    # Not ok: a run that judged nothing must not exit 0.
    INCONCLUSIVE = "INCONCLUSIVE"
    # The executor lost the task (a Dask worker died under it twice, a broken pool):
    # a fault of the engine, not of the implementation. Not ok, and never CRASHED.
    INFRA_ERROR = "INFRA_ERROR"

    @property
    def ok(self) -> bool:
        return self in (Verdict.PASS, Verdict.SKIP)


@dataclass
class Coordinate:
    """One compared element. ``bracket`` is set where the element is non-differentiable
    (a ReLU kink): any value in [lo, hi] is a valid subgradient."""

    index: tuple
    got: float
    expected: float
    tolerance: float
    bracket: tuple | None = None


@dataclass
class TensorReport:
    name: str  # "layer 0 W"
    verdict: Verdict
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    n_elements: int = 0
    n_failed: int = 0
    n_nondifferentiable: int = 0  # elements judged by their bracket of one-sided derivatives
    n_unjudged: int = 0  # elements whose tolerance is not finite or not below the tensor's magnitude
    worst: list[Coordinate] = field(default_factory=list)
    message: str = ""


@dataclass
class CheckResult:
    check: str
    impl: str
    case: str
    verdict: Verdict
    message: str = ""
    tensors: list[TensorReport] = field(default_factory=list)
    hint: str = ""
    seed: int | None = None
    repro: str = ""
    seconds: float = 0.0
    # Worth knowing although the check passed: calls that differ within rounding, say.
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        for t in d["tensors"]:
            t["verdict"] = t["verdict"].value
        return d

    def describe(self) -> str:
        """The failure as text: what, where, got, expected, hint, reproduce."""
        lines = [f"{self.check} {self.verdict.value}: {self.impl} on {self.case}: {self.message}"]
        for t in self.tensors:
            if t.verdict is Verdict.PASS:
                continue
            unjudged = f", {t.n_unjudged} cannot be judged" if t.n_unjudged else ""
            lines.append(
                f"  {t.name}: {t.n_failed}/{t.n_elements} elements outside tolerance{unjudged}, "
                f"max abs error {t.max_abs_error:.3g}, max rel error {t.max_rel_error:.3g}"
                + (f"; {t.message}" if t.message else "")
            )
            for c in t.worst[:3]:
                where = f"[{', '.join(map(str, c.index))}]"
                extra = f", valid bracket [{c.bracket[0]:.6g}, {c.bracket[1]:.6g}]" if c.bracket else ""
                lines.append(f"    {where}: got {c.got:.9g}, expected {c.expected:.9g} (tolerance {c.tolerance:.2g}{extra})")
        if self.note:
            lines.append(f"  note: {self.note}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        if self.repro:
            lines.append(f"  reproduce: {self.repro}")
        return "\n".join(lines)
