"""``backprop-harness bench``: table, JSON, plot and bad input."""

import json

import pytest

from harness.commands.main import main
from harness.core import registry
from harness.core.protocol import Implementation

QUICK = ["--sizes", "6,5,3", "--min-time", "0.01", "--min-samples", "3"]


def test_cli_writes_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    rc = main(["bench", "--impl", "numpy", "--impl", "pure-python", "--batch", "1,4", *QUICK,
               "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "numpy" in printed and "pure-python" in printed and "batch 4" in printed
    document = json.loads(out_json.read_text())
    assert document["sizes"] == [6, 5, 3] and document["threads"] == 1
    timings = {(t["implementation"], t["dtype"], t["batch"]): t for t in document["timings"]}
    assert set(timings) == {(n, d, b) for n in ("numpy", "pure-python") for d in ("float32", "float64") for b in (1, 4)}
    assert timings[("numpy", "float64", 4)]["median"] > 0
    assert timings[("pure-python", "float32", 1)]["median"] is None
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch", "0"], "batch sizes must be >= 1"),
        (["--batch", "a,b"], "expected comma-separated integers"),
        (["--plot", "out.jpg"], "expected a .png file name"),
        (["--impl", "no-such-impl"], "no implementation of that name"),
        (["--min-time", "-1"], "is not a finite number > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_unavailable_named_implementation_is_a_usage_error(capsys, monkeypatch):
    # loaded in a worker, which says why it cannot run; in process, the same
    assert main(["bench", "--impl", "tests.conformance_impls:Unavailable", *QUICK]) == 2
    assert "needs hardware this machine lacks" in capsys.readouterr().err

    class Missing(Implementation):
        name = "missing-dependency"

        def unavailable_reason(self, device=None):
            return "libfoo is not installed"

    registry.implementations()
    monkeypatch.setitem(registry._REGISTRY, "missing-dependency", Missing())
    assert main(["bench", "--impl", "missing-dependency", "--in-process", *QUICK]) == 2
    assert "libfoo is not installed" in capsys.readouterr().err



def test_the_table_shows_a_plugins_name_device_and_error_as_text_not_as_markup_or_escapes():
    """What a plug-in names itself, its device and what it raised reach the table as text:
    rich markup in them is shown, not obeyed (a name ``[green]PASS[/]`` would otherwise
    print a green PASS), and control characters are escapes."""
    import io

    from rich.console import Console

    from harness.commands.bench import print_table
    from harness.speed.timing import Timing

    timings = [Timing("eve [bold green]fast[/]", "float64", 1, device="cpu\x1b[2K", error="boom \x1b[32m[green]ok[/]"),
               Timing("eve [bold green]fast[/]", "float32", 1, device="cpu", skipped="no [red]float32[/]")]
    out = io.StringIO()
    print_table(timings, Console(file=out, width=250, color_system=None))
    text = out.getvalue()
    assert "\x1b" not in text
    assert "eve [bold green]fast[/]" in text and "cpu\\x1b[2K" in text, text
    assert "boom \\x1b[32m[green]ok[/]" in text and "no [red]float32[/]" in text, text
