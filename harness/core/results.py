"""Result records: what a check found, per tensor and per coordinate."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

# Control characters shown as escapes (\x1b): a name or an exception's words from an
# implementation could otherwise move the terminal's cursor, erase the lines above and
# write "PASS" over a FAIL, or reverse the text that follows (Unicode's bidirectional
# overrides). Tabs and newlines stay.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n"}
_CONTROLS.update({c: f"\\u{c:04x}" for c in [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]})


def printable(text: str) -> str:
    """``text`` with its control characters (ESC, CR, BEL, C1 ...) written as escapes."""
    return text.translate(_CONTROLS) if isinstance(text, str) else text


def shown(text) -> str:
    """What an implementation or plug-in wrote, for a rich table cell or markup: its
    markup escaped and its control characters written as escapes (``printable``)."""
    from rich.markup import escape

    return escape(printable(str(text)))


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

    def __post_init__(self):
        self.name, self.message = printable(self.name), printable(self.message)


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

    def __post_init__(self):
        # what an implementation can name or say, shown and stored as text (``printable``)
        self.impl, self.case, self.message = printable(self.impl), printable(self.case), printable(self.message)
        self.hint, self.note = printable(self.hint), printable(self.note)

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
