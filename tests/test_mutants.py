"""Mutation testing: every seeded fault is killed by a property with a replayed counterexample."""

from __future__ import annotations

import pytest

from models.faults import ALLOCATOR_FAULTS, BINDER_FAULTS, FAULTS, SHRINK_FAULTS
from verify import mutants
from verify.cli import main
from verify.mutants import Cell, Outcome, jobs_for, killers, run_mutants, summary
from verify.runner import default_jobs

PAGE, TIMEOUT_MS = 4096, 60_000


def test_catalogue_has_at_least_25_faults_in_every_layer() -> None:
    assert len(FAULTS) >= 25
    assert len(SHRINK_FAULTS) >= 10 and len(ALLOCATOR_FAULTS) >= 5 and len(BINDER_FAULTS) >= 5
    assert len(FAULTS) == len(SHRINK_FAULTS) + len(ALLOCATOR_FAULTS) + len(BINDER_FAULTS)


@pytest.fixture(scope="module")
def matrix() -> list[Outcome]:
    """The whole kill matrix, computed once (about a minute on two cores)."""
    return list(run_mutants(list(FAULTS), PAGE, TIMEOUT_MS, default_jobs()))


def test_every_mutant_is_killed_with_a_replayed_counterexample(matrix: list[Outcome]) -> None:
    survivors = [f for f in FAULTS if not killers(matrix, f)]
    assert survivors == []
    assert f"{len(FAULTS)}/{len(FAULTS)} mutants killed (100%)" in summary(matrix, list(FAULTS), 0.0)
    for o in matrix:
        assert (o.cell is Cell.KILLED) == bool(o.counterexample)


def test_the_matrix_is_complete_and_decided(matrix: list[Outcome]) -> None:
    assert [(o.fault, o.prop_id, o.model) for o in matrix] == jobs_for(list(FAULTS), PAGE)
    assert not [o for o in matrix if o.cell is Cell.UNKNOWN]


# The faults each new property was added for: only that property kills them, so without it they survive.
ONLY_KILLER = {
    "copy-one-too-long": "shrink.memory-safe",
    "noop-path-reallocs": "shrink.nothing-to-shrink",
    "krealloc-copies-new-size": "reserve.memory-safe",
}


@pytest.mark.parametrize(("fault", "prop_id"), ONLY_KILLER.items())
def test_a_new_property_is_the_only_killer_of_its_fault(matrix: list[Outcome], fault: str, prop_id: str) -> None:
    assert {o.prop_id for o in killers(matrix, fault)} == {prop_id}


def test_a_property_already_violated_kills_nothing(matrix: list[Outcome]) -> None:
    cells = {o.cell for o in matrix if o.prop_id == "shrink.physical-never-grows" and o.model == "kvvec-v6/u8"}
    assert cells == {Cell.NOT_A_KILLER}


def test_a_fault_is_killed_where_it_matters(matrix: list[Outcome]) -> None:
    by = {(o.fault, o.prop_id, o.model): o.cell for o in matrix}
    assert by[("zst-check-dropped", "shrink.zst-noop", "kvvec-v6/zst")] is Cell.KILLED
    assert by[("copy-one-short", "shrink.elements-kept", "kvvec-v6/u8")] is Cell.KILLED
    assert by[("kmalloc-unrounded", "shrink.invariants-kept", "kvvec-v6/u8")] is Cell.KILLED
    assert by[("binder-shrink-dropped", "binder.waste-bound", "binder/v6")] is Cell.KILLED
    # Copying one element short is invisible to the capacity: that property must not claim the kill.
    assert by[("copy-one-short", "shrink.capacity-floor", "kvvec-v6/u8")] is Cell.SURVIVED


def test_mutants_prints_the_matrix_and_exits_zero_when_all_are_killed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mutants", "--fault", "target-min", "--fault", "binder-shrink-dropped", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2/2 mutants killed (100%)" in out
    row = next(line for line in out.splitlines() if line.startswith("binder-shrink-dropped "))
    assert "X" in row and "SURVIVED" not in row
    assert "binder-shrink-dropped: binder.waste-bound on binder/v6: PAGE_SIZE 64: register" in out


def test_a_surviving_mutant_fails_the_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The zero-sized-T check matters only for a zero-sized T: seeded into u8 alone, nothing can kill it.
    monkeypatch.setattr(mutants, "KVVEC_MODELS", ("kvvec-v6/u8",))
    code = main(["mutants", "--fault", "zst-check-dropped", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0/1 mutants killed (0%)" in out and "survived: zst-check-dropped" in out


def test_unknown_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--fault", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown fault 'nope'" in err
