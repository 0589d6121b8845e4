"""The merged KUnit tests as checks: their calls, every allocator outcome, their assertions and unwraps."""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import z3

from models.allocator import ALL_OUTCOMES, Kind, Outcome
from models.allocator_z3 import SymOutcome
from models.catalogue import model_named
from models.machine import PRESETS, Platform
from models.vec import Push, Reserve, ShrinkTo, Step, VecState, step
from models.vec_z3 import SymPlatform, SymStep
from properties import kunit
from properties.base import KernelTest, Verdict
from properties.registry import all_properties
from verify.check.engine import check
from verify.search.solver import Solving
from verify.traces.replay import replay
from verify.traces.trace import TraceError, load_text

PAGE = 4096
SOLVING = Solving(120_000)
U8 = model_named("kvvec-v6/u8")


def programs(page: int = PAGE) -> dict[str, KernelTest]:
    return {p.id: p for p in kunit.test_programs(page)}


def failures(prop: KernelTest, page: int = PAGE) -> list[tuple[Outcome, ...]]:
    """Every choice of allocator outcomes under which some call the test reaches breaks the claim (Python only).

    A depth-first walk over the calls with every outcome; runs that reach the
    same state at the same call are explored once (pushes into spare room do not
    depend on their outcome).
    """
    plat = U8.machine(1, page)
    found: list[tuple[Outcome, ...]] = []
    seen: set[tuple[int, VecState]] = set()

    def walk(index: int, state: VecState, chosen: tuple[Outcome, ...]) -> None:
        if index == len(prop.calls) or (index, state) in seen:
            return
        seen.add((index, state))
        for outcome in ALL_OUTCOMES:
            taken = step(plat, state, dataclasses.replace(prop.calls[index], outcome=outcome))
            if not prop.py(plat, taken):
                found.append((*chosen, outcome))
            elif taken.ok:
                walk(index + 1, taken.post, (*chosen, outcome))

    walk(0, VecState(), ())
    return found


def test_the_four_merged_tests_and_their_calls() -> None:
    tests = {t.function: t for t in kunit.merged_tests(PAGE)}
    assert sorted(tests) == [
        "test_kvvec_shrink_to",
        "test_kvvec_shrink_to_empty",
        "test_kvvec_shrink_to_no_op",
        "test_kvvec_shrink_to_respects_min_capacity",
    ]
    calls = [c.call for c in tests["test_kvvec_shrink_to"].calls]
    assert calls == [Reserve(4 * PAGE), Push(1), Push(2), Push(3), ShrinkTo(PAGE), ShrinkTo(0)]
    assert [c.call for c in tests["test_kvvec_shrink_to_empty"].calls] == [Reserve(4 * PAGE), ShrinkTo(0)]
    assert [c.call for c in tests["test_kvvec_shrink_to_no_op"].calls] == [Reserve(PAGE), Push(1), ShrinkTo(PAGE + 100)]
    min_cap = [c.call for c in tests["test_kvvec_shrink_to_respects_min_capacity"].calls]
    assert min_cap == [Reserve(4 * PAGE), *(Push(i) for i in range(10)), ShrinkTo(2 * PAGE)]
    # Three checks per test; only the checks of the merged tests are named kunit.*.
    ids = [p.id for p in all_properties(PAGE) if p.id.startswith("kunit.")]
    assert len(ids) == 12 and all(isinstance(p, KernelTest) for p in all_properties(PAGE) if p.id in ids)


@pytest.mark.parametrize("prop_id", sorted(programs()))
def test_the_solver_agrees_with_every_outcome_enumerated_on_the_python_model(prop_id: str) -> None:
    prop = programs()[prop_id]
    result = check(prop, U8, PAGE, SOLVING)
    broken = failures(prop)
    assert result.verdict is (Verdict.VIOLATED if broken else Verdict.PROVED), (result.detail, broken[:3])
    assert result.as_expected


def test_each_shrink_unwrap_panics_exactly_under_the_stated_outcomes() -> None:
    kmalloc_fails = [o for o in ALL_OUTCOMES if not o.kmalloc_ok]
    # test_kvvec_shrink_to: with_capacity's kmalloc fails (a vmalloc buffer), then shrink_to(PAGE_SIZE)'s kmalloc.
    panics = failures(programs()["kunit.shrink.shrink-unwrap-ok"])
    assert {(p[0], p[-1]) for p in panics} == {(Outcome(False, True), o) for o in kmalloc_fails}
    assert all(len(p) == 5 for p in panics)  # the first shrink_to; the second never fails
    # ..._respects_min_capacity: also the vmalloc attempt of kvmalloc(2 * PAGE_SIZE) fails.
    panics = failures(programs()["kunit.respects-min-capacity.shrink-unwrap-ok"])
    assert {(p[0], p[-1]) for p in panics} == {(Outcome(False, True), Outcome(False, False))}
    assert failures(programs()["kunit.empty.shrink-unwrap-ok"]) == []
    assert failures(programs()["kunit.no-op.shrink-unwrap-ok"]) == []


def test_a_panic_trace_shows_the_buffer_and_the_failing_outcome(tmp_path: Path) -> None:
    result = check(programs()["kunit.shrink.shrink-unwrap-ok"], U8, PAGE, SOLVING)
    trace = result.counterexample
    assert result.verdict is Verdict.VIOLATED and trace is not None and trace.start == "setup"
    assert trace.setup == (Reserve(4 * PAGE, Outcome(False, True)), Push(1), Push(2), Push(3))
    last = trace.steps[-1]
    assert last.pre.buf is not None and last.pre.buf.kind is Kind.VMALLOC
    assert isinstance(last.action, ShrinkTo) and last.action.min_capacity == PAGE
    assert not last.action.outcome.kmalloc_ok and not last.ok
    assert replay(load_text(trace.text(), "panic")).reproduces


def test_a_trace_of_a_merged_test_must_follow_its_calls() -> None:
    trace = check(programs()["kunit.shrink.shrink-unwrap-ok"], U8, PAGE, SOLVING).counterexample
    assert trace is not None
    raw = json.loads(trace.text())
    raw["#meta"]["setup"][1]["identity"] = 7
    with pytest.raises(TraceError, match=r"#meta.setup/1: not call 1 of test_kvvec_shrink_to"):
        replay(load_text(json.dumps(raw), "reordered"))
    raw = json.loads(trace.text())
    raw["#meta"]["setup"] = raw["#meta"]["setup"][:3]
    with pytest.raises(TraceError, match=r"states/1/action: not call 3 of test_kvvec_shrink_to"):
        replay(load_text(json.dumps(raw), "skipped"))


def test_the_exact_err_conditions_are_stated_per_call() -> None:
    statement = programs()["kunit.shrink.errs-exactly"].statement
    assert "with_capacity(4 * PAGE_SIZE): Err exactly when kmalloc and vmalloc both fail" in statement
    assert "shrink_to(PAGE_SIZE): Err exactly when the buffer is a vmalloc area and kmalloc fails" in statement
    # A wrong condition is refuted: shrink_to(PAGE_SIZE) does not fail on a kmalloc buffer.
    prop = programs()["kunit.shrink.errs-exactly"]
    index = prop.calls.index(ShrinkTo(PAGE))

    wrong = _with_err_condition(prop, index)
    assert failures(wrong), "claiming Err on any kmalloc failure must be refuted"
    assert check(wrong, U8, PAGE, SOLVING).verdict is Verdict.VIOLATED


def _with_err_condition(prop: KernelTest, index: int) -> KernelTest:
    """The same check, claiming shrink_to(PAGE_SIZE) fails whenever its kmalloc fails (whatever the buffer)."""

    def z3_claim(sp: SymPlatform, i: int, st: SymStep, outcome: SymOutcome) -> Any:
        if i != index:
            return prop.z3(sp, i, st, outcome)
        return z3.Not(st.ok) == z3.Not(outcome.kmalloc_ok)

    def py_claim(p: Platform, s: Step) -> bool:
        if prop.index_of(s.action) != index:
            return prop.py(p, s)
        assert isinstance(s.action, ShrinkTo)
        return (not s.ok) == (not s.action.outcome.kmalloc_ok)

    return dataclasses.replace(prop, id="kunit.shrink.wrong-condition", z3=z3_claim, py=py_claim)


@cache
def _arm64_results() -> dict[str, Verdict]:
    model = model_named("kvvec-v6/u8@arm64-64k")
    page = PRESETS["arm64-64k"].page_size
    return {p.id: check(p, model, page, SOLVING).verdict for p in kunit.test_programs(page)}


@pytest.mark.slow
@pytest.mark.parametrize("prop_id", sorted(programs()))
def test_the_verdicts_are_the_same_with_64k_pages(prop_id: str) -> None:
    prop = programs()[prop_id]
    expected = Verdict.VIOLATED if prop.expect_violated(U8) else Verdict.PROVED
    assert _arm64_results()[prop_id] is expected
