"""spin as the explorer's peer: the project's Promela model of the binder instance stores the explorer's states.

Runs only where spin and a C compiler are installed (Debian's package `spin`); CI need not have them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from models.binder import policy_named
from verify.search.explorer import Instance
from verify.search.packed import explore_packed

REPO = Path(__file__).resolve().parent.parent


def _peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spin_peer", REPO / "bench" / "spin_peer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spin_peer"] = module
    spec.loader.exec_module(module)
    return module


PEER = _peer()
MISSING = PEER.spin_available()


@pytest.mark.skipif(MISSING is not None, reason=f"spin cannot run here: {MISSING}")
@pytest.mark.parametrize("bound", [40, 512])
def test_spin_stores_as_many_states_as_the_explorer(bound: int) -> None:
    spin = PEER.run_spin(bound)
    assert spin.states == explore_packed(policy_named("v6"), Instance(64, bound)).states


def test_the_explorer_side_of_the_comparison_runs_every_property() -> None:
    ours, explore_seconds, explore_cpu, edges = PEER.run_explorer(40)
    assert (ours.states, edges) == (749, 1582) and 0 < explore_seconds < ours.seconds
    assert 0 < explore_cpu < ours.cpu_seconds
    # v6 on the gate's instance: the declared verdicts, each violation's trace replayed.
    assert ours.detail.startswith("no-immediate-regrow VIOLATED in 7; premise VIOLATED in 7; waste-bound PROVED;")
    assert "reclaim VIOLATED in 10; no-thrash PROVED" in ours.detail
