"""``backprop-harness ops``, in-process: every operator with its inputs, the
non-differentiable ones, dtypes and providers; a plug-in provider is listed with what it
offers, one that cannot load with why (and exit 1)."""

from harness.commands.main import main
from tests.ops import plugins


def _ops(capsys, code=0):
    assert main(["ops"]) == code
    return " ".join(capsys.readouterr().out.replace("│", "|").split())


def test_ops_lists_every_operator_with_dtypes_nondifferentiable_inputs_and_providers(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    out = _ops(capsys)
    assert "operators (29)" in out
    assert "| embedding | indices, W | indices | float32, float64 | - | numpy, torch |" in out
    assert "| cross_entropy | logits, labels | labels | float32, float64 | ignore_index=-100, label_smoothing=0.0 | numpy, torch, pure-python |" in out
    assert "| conv2d | x, w, b | - | float32, float64 | stride=2, padding=1, dilation=1 | numpy, torch |" in out
    assert "| pure-python | yes | 8 |" in out


def test_a_plugin_provider_is_listed_and_one_that_cannot_load_fails_the_listing(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    plugins.install(tmp_path / "a", monkeypatch, "wrong-relu", plugins.WRONG_RELU)
    out = _ops(capsys)
    assert "| relu | x | - | float32, float64 | - | numpy, torch, pure-python, wrong-relu |" in out
    assert "| wrong-relu (plug-in) | yes | 1 |" in out
    plugins.install(tmp_path / "b", monkeypatch, "broken-ops", plugins.BROKEN)
    out = _ops(capsys, code=1)
    assert "| broken-ops | no: failed to load: RuntimeError: this plug-in cannot load |" in out


def test_a_plugin_s_words_are_shown_as_written_not_as_markup_or_terminal_escapes(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    plugins.install(tmp_path, monkeypatch, "spoofing-ops", 'raise RuntimeError("[green]loaded[/] \\x1b[2K\\x1b[1A")\n')
    out = _ops(capsys, code=1)
    assert "\x1b" not in out
    assert "| spoofing-ops | no: failed to load: RuntimeError: [green]loaded[/] \\x1b[2K\\x1b[1A |" in out
