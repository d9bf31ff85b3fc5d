"""Hypothesis profiles: the environment picks one (``HYPOTHESIS_PROFILE``, else ``ci``
under CI, else ``dev``), ``ci`` is reproducible, and the conformance tests apply the
chosen profile to themselves only."""

import pytest
from hypothesis import settings

from harness.conformance import profiles


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "dev"), ({"CI": "true"}, "ci"), ({"HYPOTHESIS_PROFILE": "thorough"}, "thorough"),
     ({"CI": "true", "HYPOTHESIS_PROFILE": "dev"}, "dev")],
)
def test_the_environment_selects_the_profile(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert profiles.active_profile() == expected


def test_ci_profile_is_reproducible_and_the_others_are_ordered():
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None and ci.deadline is None
    sizes = [settings.get_profile(p).max_examples for p in ("dev", "ci", "thorough")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_an_unknown_profile_is_an_error_naming_it(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "no-such-profile")
    with pytest.raises(ValueError, match="no-such-profile"):
        profiles.conformance_settings()


def test_conformance_settings_are_the_selected_profiles_without_a_deadline(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "thorough")
    chosen = profiles.conformance_settings()
    assert chosen.max_examples == settings.get_profile("thorough").max_examples
    assert chosen.deadline is None  # a first call may compile for seconds
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    assert profiles.conformance_settings().derandomize


def test_a_profile_the_project_registered_itself_is_accepted(monkeypatch):
    settings.register_profile("project-own-profile", max_examples=3)
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "project-own-profile")
    assert profiles.conformance_settings().max_examples == 3


def test_every_named_profile_is_registered():
    for name in profiles.PROFILES:
        assert settings.get_profile(name).deadline is None
