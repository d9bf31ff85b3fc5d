"""Memory estimates made before anything is allocated: they grow with the parameters and
the batch, what the machine has is read, and a run beyond it is refused naming it."""

import pytest

from harness.core import memory
from harness.core.spec import SEED_SPEC, NetworkSpec


def test_estimates_count_parameters_and_activations():
    small, wide = NetworkSpec((4, 3, 2), ("relu", "identity")), NetworkSpec((4, 1_000_000_000, 2), ("relu", "identity"))
    assert memory.check_bytes(small, 2) == 8 * (25 * small.n_params + 16 * 2 * 9)
    assert memory.check_bytes(wide, 64) > 1e12  # 7 billion parameters: terabytes, whatever the batch
    assert memory.check_bytes(SEED_SPEC, 64) < 2**28  # the seed's network checks in well under 256 MiB
    assert memory.step_bytes(SEED_SPEC, 256) < memory.check_bytes(SEED_SPEC, 256)
    assert memory.train_bytes(SEED_SPEC, 32, 10_000) > memory.train_bytes(SEED_SPEC, 32, 0)


def test_what_the_machine_has_is_read():
    have = memory.available_bytes()
    assert have is None or have > 2**20


def test_a_run_beyond_the_machine_is_refused_naming_it(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    memory.require(2**29, "checking something small")
    with pytest.raises(ValueError) as info:
        memory.require(3 * 2**40, "checking 4-1000000000-2")
    assert str(info.value) == ("checking 4-1000000000-2: needs about 3,072.0 GiB of memory (estimated before allocating), "
                               "more than the 1.0 GiB available on this machine")
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    memory.require(3 * 2**40, "unknown machine")  # nothing to compare with: nothing refused
