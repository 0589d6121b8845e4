"""Mutation testing: every seeded fault is killed by a property with a replayed counterexample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from models.allocator import Fn, Kind, kmalloc_physical, vmalloc_physical
from models.binder import BinderStep, Deregister, Register, policy_named
from models.faults import (
    ALLOCATOR_FAULTS,
    BINDER_FAULTS,
    BINDER_VEC_FAULTS,
    FAULTS,
    GENERIC_FAULTS,
    PLATFORM_FAULTS,
    SHRINK_FAULTS,
)
from models.machine import div_ceil
from models.vec import Step, VecState, step
from properties import binder
from verify.check import mutants
from verify.check.mutants import Cell, Outcome, jobs_for, killers, run_mutants, summary
from verify.check.runner import default_jobs
from verify.cli import main
from verify.traces.trace import Trace

PAGE, TIMEOUT_MS = 4096, 60_000


def test_catalogue_has_at_least_25_faults_in_every_layer() -> None:
    assert len(FAULTS) >= 25
    assert len(SHRINK_FAULTS) >= 10 and len(ALLOCATOR_FAULTS) >= 5 and len(BINDER_FAULTS) >= 5
    assert len(PLATFORM_FAULTS) >= 3
    layers = (SHRINK_FAULTS, ALLOCATOR_FAULTS, PLATFORM_FAULTS, BINDER_FAULTS, BINDER_VEC_FAULTS, GENERIC_FAULTS)
    assert len(FAULTS) == sum(map(len, layers))


@pytest.fixture(scope="module")
def matrix() -> list[Outcome]:
    """The whole kill matrix, computed once: some 1,500 solver queries, minutes on two cores.

    Every test that reads it is marked slow; CI's full suite runs them, so every seeded fault is
    proved killed there with a replayed counterexample (`.ci/run` runs no separate `verify mutants`)."""
    return list(run_mutants(list(FAULTS), PAGE, TIMEOUT_MS, default_jobs()))


def first_finder(matrix: list[Outcome], fault: str) -> Outcome | None:
    """The first killer: the first property, in catalogue order, violated with a replayed trace."""
    found = killers(matrix, fault)
    return found[0] if found else None


@pytest.mark.slow
def test_every_mutant_is_killed_with_a_replayed_counterexample(matrix: list[Outcome]) -> None:
    survivors = [f for f in FAULTS if not killers(matrix, f)]
    assert survivors == []
    assert f"{len(FAULTS)}/{len(FAULTS)} mutants killed (100%)" in summary(matrix, list(FAULTS), 0.0)
    for o in matrix:
        assert (o.cell is Cell.KILLED) == bool(o.counterexample) == (o.trace is not None)


@pytest.mark.slow
def test_the_matrix_is_complete_and_decided(matrix: list[Outcome]) -> None:
    assert [(o.fault, o.prop_id, o.model) for o in matrix] == jobs_for(list(FAULTS), PAGE)
    assert not [o for o in matrix if o.cell is Cell.UNKNOWN]


# The faults that make each claim from an arbitrary pre-state fail: each is caught by that property alone.
CAUGHT_ONLY_BY = {
    "vec-in-binder-retain-drops-next": "binder.keeps-others",
    "binder-dereg-removes-last": "binder.keeps-others",
    "vec-in-binder-failed-push-drops-last": "binder.failed-register-unchanged",
    "binder-failed-register-pops": "binder.failed-register-unchanged",
    "vec-in-binder-push-stale-request": "binder.invariant-forever",
    "binder-shrink-err-adopted": "binder.invariant-forever",
}


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "killer"), CAUGHT_ONLY_BY.items())
def test_each_binder_claim_from_any_state_is_the_only_one_to_catch_its_fault(
    matrix: list[Outcome], fault: str, killer: str
) -> None:
    assert {o.prop_id for o in killers(matrix, fault)} == {killer}
    # And no other fault is caught by it alone: each of these properties is needed for its faults.
    alone = [f for f in FAULTS if {o.prop_id for o in killers(matrix, f)} == {killer}]
    assert sorted(alone) == sorted(f for f, k in CAUGHT_ONLY_BY.items() if k == killer)


def _readme_first_killers() -> dict[str, str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index("## Mutation testing") : text.index("## Findings")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            rows[cells[1].strip("`")] = cells[3].split("`")[1]  # `killer`, perhaps followed by "(only)"
    return rows


@pytest.mark.slow
def test_the_readme_mutation_table_names_every_fault_and_its_first_killer(matrix: list[Outcome]) -> None:
    readme = _readme_first_killers()
    assert sorted(readme) == sorted(FAULTS)
    for fault, killer in readme.items():
        first = first_finder(matrix, fault)
        assert first is not None and first.prop_id == killer, fault


def test_the_readme_counts_the_mutants() -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"All {len(FAULTS)} faults are killed (100%), each with a replayed trace" in text


@pytest.mark.slow
def test_only_the_readmes_exceptions_catch_no_fault(matrix: list[Outcome]) -> None:
    catching = {o.prop_id for o in matrix if o.cell is Cell.KILLED}
    silent = sorted({o.prop_id for o in matrix} - catching)
    assert silent == [
        "binder.no-immediate-regrow", "binder.no-immediate-regrow.bmc", "binder.reclaim",
        "kunit.empty.shrink-unwrap-ok", "kunit.respects-min-capacity.shrink-unwrap-ok", "kunit.shrink.shrink-unwrap-ok",
        "shrink.frees-as-v6.vmalloc-path", "shrink.vmalloc-replacement-not-larger",
    ]
    # Those three binder properties, and the two unwraps that panic on the merged code, are declared
    # VIOLATED on the model the faults are seeded into (the generic shrink_to never fails: there they hold).
    declared = {o.cell for o in matrix if o.prop_id in silent[:3] + silent[4:6] and "generic" not in o.model}
    assert declared == {Cell.NOT_A_KILLER}


# The faults each new property was added for: only that property kills them, so without it they survive.
ONLY_KILLER = {
    "copy-one-too-long": "shrink.memory-safe",
    "noop-path-reallocs": "shrink.nothing-to-shrink",
    "krealloc-copies-new-size": "reserve.memory-safe",
}


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "prop_id"), ONLY_KILLER.items())
def test_a_new_property_is_the_only_killer_of_its_fault(matrix: list[Outcome], fault: str, prop_id: str) -> None:
    assert {o.prop_id for o in killers(matrix, fault)} == {prop_id}


@pytest.mark.slow
def test_a_property_already_violated_kills_nothing(matrix: list[Outcome]) -> None:
    cells = {o.cell for o in matrix if o.prop_id == "shrink.physical-never-grows" and o.model == "kvvec-v6/u8"}
    assert cells == {Cell.NOT_A_KILLER}


@pytest.mark.slow
def test_a_fault_is_killed_where_it_matters(matrix: list[Outcome]) -> None:
    by = {(o.fault, o.prop_id, o.model): o.cell for o in matrix}
    assert by[("zst-check-dropped", "shrink.zst-noop", "kvvec-v6/zst")] is Cell.KILLED
    assert by[("copy-one-short", "shrink.elements-kept", "kvvec-v6/u8")] is Cell.KILLED
    assert by[("kmalloc-unrounded", "shrink.invariants-kept", "kvvec-v6/u8")] is Cell.KILLED
    assert by[("binder-shrink-dropped", "binder.waste-bound", "binder/v6")] is Cell.KILLED
    # The operation faults break what the single-step proofs and the induction step check, from any state.
    assert by[("binder-dereg-removes-last", "binder.keeps-others", "binder/v6")] is Cell.KILLED
    assert by[("binder-failed-register-pops", "binder.failed-register-unchanged", "binder/v6")] is Cell.KILLED
    assert by[("binder-shrink-err-adopted", "binder.invariant-forever", "binder/v6")] is Cell.KILLED
    assert by[("binder-target-len-8", "binder.page-rule-never-refuses", "binder/v6")] is Cell.KILLED
    # The policy's arithmetic, from KVVec::new(): len - 1 once the last process leaves.
    assert by[("binder-target-len-minus-one", "binder.policy-arithmetic", "binder/v6")] is Cell.KILLED
    # Copying one element short is invisible to the capacity: that property must not claim the kill.
    assert by[("copy-one-short", "shrink.capacity-floor", "kvvec-v6/u8")] is Cell.SURVIVED


@pytest.mark.slow  # every property on two faults
def test_mutants_prints_the_matrix_and_exits_zero_when_all_are_killed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["mutants", "--fault", "target-min", "--fault", "binder-shrink-dropped", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2/2 mutants killed (100%)" in out
    row = next(line for line in out.splitlines() if line.startswith("binder-shrink-dropped "))
    assert "X" in row and "SURVIVED" not in row
    assert "binder-shrink-dropped: binder.waste-bound on binder/v6: PAGE_SIZE 64: register" in out


@pytest.mark.slow  # every property on u8
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


# --- what each fault does, seen in its first killer's counterexample ----------------


def _call(t: Trace) -> Step:
    s = t.steps[-1]
    assert isinstance(s, Step)
    return s


def _target(s: Step) -> int:
    return max(s.pre.len, s.action.min_capacity)  # type: ignore[union-attr]


def _pages(t: Trace, layout_len: int) -> int:
    return div_ceil(layout_len * t.elem_size, t.page_size)


def _replaced(s: Step) -> bool:
    return s.pre.buf is not None and s.post.buf is not None and s.pre.buf.id != s.post.buf.id


def _last(t: Trace) -> BinderStep:
    s = t.steps[-1]
    assert isinstance(s, BinderStep)
    return s


def _after_retain(s: BinderStep) -> VecState:
    return s.steps[0].post


def _kmalloc_pre(s: Step) -> bool:
    return s.pre.buf is not None and s.pre.buf.kind is Kind.KMALLOC


def _shrank_above_a_quarter(t: Trace) -> bool:
    """Some deregistration shrank though len >= cap/4 after its retain."""
    return any(
        isinstance(s, BinderStep) and s.shrink_attempted and _after_retain(s).len >= _after_retain(s).layout_len // 4
        for s in t.steps
    )


def _skipped_below_a_quarter(s: BinderStep) -> bool:
    """The deregistration left len < cap/4 and did not shrink."""
    return not s.shrink_attempted and _after_retain(s).len < _after_retain(s).layout_len // 4


EFFECTS: dict[str, Callable[[Trace], bool]] = {
    "target-ignores-len": lambda t: _call(t).post.layout_len == _call(t).action.min_capacity < _call(t).pre.len,  # type: ignore[union-attr]
    "target-ignores-min-capacity": lambda t: _call(t).post.layout_len == _call(t).pre.len < _target(_call(t)),
    "target-min": lambda t: _call(t).post.layout_len
    == min(_call(t).pre.len, _call(t).action.min_capacity) < _target(_call(t)),  # type: ignore[union-attr]
    "noop-check-dropped": lambda t: _call(t).post.layout_len > _call(t).pre.layout_len,
    "copy-one-short": lambda t: _call(t).post.elems.has_garbage() and not _call(t).pre.elems.has_garbage(),
    "layout-updated-on-err": lambda t: not _call(t).ok and _call(t).post.layout_len != _call(t).pre.layout_len,
    "page-rule-off-by-one": lambda t: _replaced(_call(t))
    and _pages(t, _call(t).post.layout_len) == _pages(t, _call(t).pre.layout_len),
    "pages-floor": lambda t: _replaced(_call(t))
    and _pages(t, _call(t).post.layout_len) == _pages(t, _call(t).pre.layout_len),
    "vmalloc-test-inverted": lambda t: _kmalloc_pre(_call(t))
    and [c.fn for c in _call(t).effects.calls] != [Fn.REALLOC],
    # The kmalloc buffer went through the page rule: a shrink asked for, and no call at all.
    "kmalloc-deep-copy": lambda t: _kmalloc_pre(_call(t)) and not _call(t).effects.calls
    and _call(t).pre.layout_len > _target(_call(t)),
    "zst-check-dropped": lambda t: t.elem_size == 0 and len(_call(t).effects.calls) > 0,
    "target-zero-skipped": lambda t: _target(_call(t)) == 0 and _call(t).ok and _call(t).post.buf is not None,
    "free-before-copy": lambda t: _call(t).effects.copied is not None and _call(t).effects.freed is not None
    and not _call(t).effects.copy_before_free,
    "old-buffer-leaked": lambda t: _replaced(_call(t)) and _call(t).effects.freed is None,
    "free-with-new-layout": lambda t: _call(t).effects.freed is not None
    and _call(t).effects.freed.nbytes == _call(t).post.layout_len * t.elem_size
    != _call(t).pre.layout_len * t.elem_size,
    "target-doubled-unchecked": lambda t: _call(t).overflow,
    "always-noop": lambda t: _call(t).pre.layout_len > _target(_call(t)) and not _call(t).effects.calls
    and _call(t).post == _call(t).pre,
    "kmalloc-unrounded": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.KMALLOC
    and _call(t).post.buf.physical == _call(t).post.buf.requested
    != kmalloc_physical(t.platform, _call(t).post.buf.requested),
    "kmalloc-max-ignored": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.KMALLOC
    and _call(t).post.buf.requested > t.platform.kmalloc_max_size,
    "vmalloc-pages-floor": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.VMALLOC
    and _call(t).post.buf.physical < _call(t).post.buf.requested,
    "kvmalloc-small-vmalloc": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.VMALLOC
    and _call(t).post.buf.requested <= t.page_size,
    # An area vmalloc made (kmalloc failed, or could not serve the size), recorded as a kmalloc object.
    "vmalloc-recorded-as-kmalloc": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.KMALLOC
    and (not _call(t).action.outcome.kmalloc_ok  # type: ignore[union-attr]
         or _call(t).post.buf.requested > t.platform.kmalloc_max_size),
    "realloc-zero-keeps": lambda t: _target(_call(t)) == 0 and _call(t).pre.buf is not None
    and _call(t).post.buf is None and _call(t).effects.freed is None,
    "realloc-zero-free-size": lambda t: _call(t).effects.freed is not None and _call(t).effects.freed.nbytes == 0
    and _call(t).pre.layout_len > 0,
    "binder-shrink-dropped": lambda t: not any(s.shrink_attempted for s in t.steps)  # type: ignore[union-attr]
    and _last(t).post.layout_len >= 4 * (_last(t).post.len + 1),
    "binder-trigger-inverted": lambda t: _shrank_above_a_quarter(t) and _skipped_below_a_quarter(_last(t)),
    "binder-trigger-cap-8": lambda t: _skipped_below_a_quarter(_last(t))
    and _after_retain(_last(t)).len >= _after_retain(_last(t)).layout_len // 8,
    "binder-target-cap-half": lambda t: _last(t).post.layout_len == _last(t).pre.layout_len // 2
    > 2 * _last(t).post.len,
    "binder-target-len-8": lambda t: _last(t).post.layout_len == 8 * _last(t).post.len < _last(t).pre.layout_len,
    "binder-target-len-minus-one": lambda t: _last(t).arithmetic_fault is not None and _after_retain(_last(t)).len == 0,
    # Until the checks from an arbitrary pre-state write traces, these are found without one (`!`).
    "vec-in-binder-retain-drops-next": lambda t: isinstance(_last(t).action, Deregister)
    and _last(t).post.len == _last(t).pre.len - 2,
    "vec-in-binder-failed-push-drops-last": lambda t: isinstance(_last(t).action, Register)
    and not _last(t).ok and _last(t).post.len == _last(t).pre.len - 1,
    "vec-in-binder-push-stale-request": lambda t: _last(t).post.buf is not None
    and _last(t).post.buf.requested != _last(t).post.layout_len * t.elem_size,
    # The process leaving is still listed afterwards.
    "binder-dereg-removes-last": lambda t: isinstance(_last(t).action, Deregister)
    and _last(t).post.elems.contains(_last(t).action.pid),
    "binder-failed-register-pops": lambda t: isinstance(_last(t).action, Register)
    and not _last(t).ok and _last(t).post.len == _last(t).pre.len - 1,
    # shrink_to failed, yet the layout is the target's: more capacity recorded than the buffer holds.
    "binder-shrink-err-adopted": lambda t: _last(t).shrink_attempted and not _last(t).steps[-1].ok
    and _last(t).post.layout_len != _after_retain(_last(t)).layout_len,
    "copy-one-too-long": lambda t: _call(t).effects.copied is not None and _call(t).post.buf is not None
    and _call(t).effects.copied.nbytes > _call(t).post.buf.requested,
    "noop-path-reallocs": lambda t: _call(t).pre.layout_len <= _target(_call(t)) and len(_call(t).effects.calls) > 0,
    "krealloc-copies-new-size": lambda t: _call(t).effects.copied is not None and _call(t).pre.buf is not None
    and _call(t).effects.copied.nbytes > _call(t).pre.buf.physical,
    "max-order-plus-one": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.KMALLOC
    and _call(t).post.buf.requested > t.platform.kmalloc_max_size,
    # A fresh kvmalloc area of small pages where the platform maps it huge.
    "huge-rounding-ignored": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.VMALLOC
    and _call(t).post.buf.physical < vmalloc_physical(t.platform, _call(t).post.buf.requested),
    "kmalloc-minalign-ignored": lambda t: _call(t).post.buf is not None and _call(t).post.buf.kind is Kind.KMALLOC
    and _call(t).post.buf.physical < kmalloc_physical(t.platform, _call(t).post.buf.requested),
    "generic-noop-check-dropped": lambda t: _call(t).post.layout_len > _call(t).pre.layout_len,
    "generic-layout-kept": lambda t: _call(t).ok and _call(t).post.layout_len == _call(t).pre.layout_len
    and _target(_call(t)) < _call(t).pre.layout_len,
    "vrealloc-frees-one-page-too-many": lambda t: _call(t).post.buf is not None
    and _call(t).post.buf.physical < _call(t).post.buf.requested,
    "vrealloc-shrink-ignores-huge": lambda t: _call(t).post.buf is not None and _call(t).post.buf.huge
    and _call(t).pre.buf is not None and _call(t).post.buf.physical < _call(t).pre.buf.physical,
}


def test_every_fault_has_its_effect_described() -> None:
    assert sorted(EFFECTS) == sorted(FAULTS)


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_first_killers_counterexample_shows_what_the_fault_does(matrix: list[Outcome], fault: str) -> None:
    first = first_finder(matrix, fault)
    assert first is not None
    assert first.trace.faults == (fault,)
    assert EFFECTS[fault](first.trace), first.counterexample
    # The same operations without the fault do not show it: the fault is the cause.
    trace = first.trace
    if trace.policy is None:
        s = _call(trace)
        healthy = step(trace.platform, s.pre, s.action)
        assert (healthy.post, healthy.effects, healthy.overflow) != (s.post, s.effects, s.overflow)
    else:
        prop = next(p for p in binder.PROPERTIES if p.id == first.prop_id)
        start = trace.initial if trace.start == "arbitrary" else None
        steps = binder.replay(trace.platform, policy_named(trace.policy), trace.actions, start)  # type: ignore[arg-type]
        assert not prop.violated(trace.platform, steps, trace.cycle_from or 0)
