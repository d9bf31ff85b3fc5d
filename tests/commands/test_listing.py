"""``backprop-harness list``: every implementation, available or not, with its
capabilities, and plug-ins that failed to load, with the reason."""

import pytest

from harness.commands.main import main
from harness.core import registry
from harness.core.protocol import Capabilities, Implementation
from tests import entry_points


@pytest.fixture(autouse=True)
def _wide_tables(monkeypatch):
    # rich folds table cells to the terminal width; xdist workers report 80 columns
    monkeypatch.setenv("COLUMNS", "250")


def _list(capsys, *args, code=0):
    assert main(["list", *args]) == code
    return " ".join(capsys.readouterr().out.replace("│", "|").split())  # "|" where rich draws no box characters


def test_list_shows_every_builtin_and_its_availability(capsys):
    out = _list(capsys)
    for name in ("pure-python", "numpy", "torch", "torch-compile"):
        assert name in out
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in out


class _Unavailable(Implementation):
    name = "listed-but-unavailable"
    description = "a double for the listing"
    capabilities = Capabilities(activations={"tanh"}, losses={"mse"}, dtypes={"float32"}, devices=("cuda",))

    def unavailable_reason(self, device=None):
        return "needs hardware this machine lacks"


@pytest.fixture
def registered(monkeypatch):
    registry.implementations()  # discover first, so that nothing added here stays registered
    monkeypatch.setattr(registry, "_REGISTRY", {**registry._REGISTRY, _Unavailable.name: _Unavailable()})
    monkeypatch.setattr(registry, "_LOAD_FAILURES", {"broken-plugin": "ImportError: gone"})


def test_an_unavailable_implementation_is_listed_with_its_reason_and_capabilities(capsys, registered):
    out = _list(capsys, "--in-process")
    row = out[out.index("listed-but-unavailable"):]
    assert row.startswith("listed-but-unavailable | no: needs hardware this machine lacks | tanh | mse | float32 | cuda | "
                          "a double for the listing")


class _Spoofing(_Unavailable):
    name = "spoofing"
    description = "[green]every check PASS[/] \x1b[2K\x1b[1A"  # markup and escapes of its own

    def unavailable_reason(self, device=None):
        return "[bold]fine[/]\x07"


def test_a_plug_in_s_words_are_shown_as_written_not_as_markup_or_terminal_escapes(capsys, monkeypatch):
    registry.implementations()
    monkeypatch.setattr(registry, "_REGISTRY", {**registry._REGISTRY, _Spoofing.name: _Spoofing()})
    out = _list(capsys, "--in-process")
    assert "\x1b" not in out and "\x07" not in out
    assert "no: [bold]fine[/]\\x07" in out and "[green]every check PASS[/] \\x1b[2K\\x1b[1A" in out


def test_a_plug_in_that_failed_to_load_is_listed_with_the_reason(capsys, registered):
    out = _list(capsys, "--in-process")
    assert "broken-plugin | no: entry point failed to load: ImportError: gone" in out


def test_in_workers_a_plug_in_that_cannot_load_or_exits_while_loading_is_listed_and_fails_the_listing(
        capsys, tmp_path, monkeypatch):
    entry_points.install(tmp_path, monkeypatch, {
        "listed-but-unavailable": "tests.commands.test_listing:_Unavailable",
        "broken-plugin": "listing_missing_module:f",
        "exits-while-loading": "listing_exits:f",
    }, {"listing_exits": "import os\nos._exit(0)\n"})
    out = _list(capsys, "--timeout", "60", code=1)
    row = out[out.index("listed-but-unavailable"):]
    assert row.startswith("listed-but-unavailable | no: needs hardware this machine lacks | tanh | mse | float32 | cuda")
    assert "broken-plugin | no: ERROR (below)" in out and "exits-while-loading | no: CRASHED (below)" in out
    assert "broken-plugin: ERROR: the worker could not load the implementation" in out
    assert "No module named 'listing_missing_module'" in out
    assert "exits-while-loading: CRASHED: the worker died during start (loading it): exit status 0" in out
    assert "numpy | yes" in out
