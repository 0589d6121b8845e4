"""A binder violation found from an arbitrary state is a VIOLATED result with a replayed trace, never a crash.

The single-operation proofs and the invariant's induction step start from any
state satisfying the type invariants; seeded operation faults break them. The
trace starts from the solver's pre-state, or, when BMC finds the violation
from `KVVec::new()` within the depth, from new().
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from models.binder import BinderStep, binder_step, policy_named, with_faults
from models.catalogue import ModelSpec, model_named
from models.vec import VecState
from properties.base import Verdict
from properties.binder import PROPERTIES, SequenceProperty
from verify.check import runner
from verify.check.engine import Result, check
from verify.check.runner import RunOptions, run_checks
from verify.cli import main
from verify.report.gate import EXIT_ERROR, exit_code
from verify.search.solver import Solving
from verify.traces.trace import load_text, save

PAGE, TIMEOUT_MS = 4096, 60_000
PROPS = {p.id: p for p in PROPERTIES}


def faulted(fault: str) -> ModelSpec:
    return model_named("binder/v6").with_faults(frozenset({fault}))


@cache
def checked(prop_id: str, fault: str, bmc_depth: int = 8) -> Result:
    """One check of a property on binder/v6 with a fault, computed once for the tests that read it."""
    return check(PROPS[prop_id], faulted(fault), PAGE, Solving(TIMEOUT_MS), bmc_depth)


def replayed_from_state_0(result: Result) -> list[BinderStep]:
    """The trace's operations run again on the Python model from its own state 0."""
    cex = result.counterexample
    assert cex is not None and cex.policy is not None
    policy = with_faults(policy_named(cex.policy), frozenset(cex.faults))
    state, steps = cex.initial, []
    for s in cex.steps:
        assert isinstance(s, BinderStep)
        taken = binder_step(cex.platform, policy, state, s.action)
        assert taken == s, "the recorded step is the replayed one"
        steps.append(taken)
        state = taken.post
    return steps


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prop_id", "fault"),
    [
        # Reachable only from states a list needs over 512 processes to reach: not within 8 operations.
        ("binder.page-rule-never-refuses", "binder-target-len-8"),
        ("binder.invariant-forever", "binder-shrink-err-adopted"),
    ],
)
def test_a_violation_from_an_arbitrary_state_is_violated_with_its_pre_state(prop_id: str, fault: str) -> None:
    prop = PROPS[prop_id]
    result = checked(prop_id, fault)
    assert result.verdict is Verdict.VIOLATED and not result.as_expected
    cex = result.counterexample
    assert cex is not None and cex.start == "arbitrary" and len(cex.steps) == 1
    assert cex.initial != VecState() and cex.initial.invariant_violations(cex.platform) == []
    assert cex.initial.buf is None or cex.initial.buf.id == 1  # canonical identities
    steps = replayed_from_state_0(result)
    assert prop.violated(cex.platform, steps, 0)
    assert result.detail == (
        "violated from an arbitrary state satisfying the type invariants;"
        " not reachable from KVVec::new() within 8 operations"
    )
    assert cex.one_line().startswith("from an arbitrary state satisfying the type invariants (len=")


@pytest.mark.slow
def test_the_broken_invariant_is_the_one_the_fault_breaks() -> None:
    result = checked("binder.invariant-forever", "binder-shrink-err-adopted")
    cex = result.counterexample
    assert cex is not None
    last = cex.steps[-1]
    assert isinstance(last, BinderStep) and last.shrink_attempted and not last.steps[-1].ok
    assert last.post.invariant_violations(cex.platform) == ["allocation size equals layout size"]


@pytest.mark.parametrize(
    ("prop_id", "fault", "operations"),
    [
        # Register two, deregister the first: the first stays, the second goes.
        ("binder.keeps-others", "binder-dereg-removes-last", 3),
        # Register one, then a registration that fails and drops it.
        ("binder.failed-register-unchanged", "binder-failed-register-pops", 2),
    ],
)
def test_a_violation_reachable_from_new_is_reported_with_the_trace_from_new(
    prop_id: str, fault: str, operations: int
) -> None:
    prop = PROPS[prop_id]
    result = checked(prop_id, fault)
    assert result.verdict is Verdict.VIOLATED
    cex = result.counterexample
    assert cex is not None and cex.start == "new" and cex.initial == VecState()
    assert prop.violated(cex.platform, replayed_from_state_0(result), 0)
    assert len(cex.steps) == operations
    assert result.detail == (
        "violated from an arbitrary state satisfying the type invariants;"
        f" also reachable from KVVec::new() in {operations} operations"
    )


@pytest.mark.slow
def test_a_violation_beyond_the_depth_is_not_reachable_within_it_but_is_beyond() -> None:
    # binder-target-len-8 asks a kmalloc list of capacity 8 with one process for shrink_to(8): a no-op.
    # From new(): 5 registrations (capacity 8), then 4 deregistrations: 9 operations.
    result = checked("binder.page-rule-never-refuses", "binder-target-len-8", 9)
    assert result.detail.endswith("also reachable from KVVec::new() in 9 operations")
    cex = result.counterexample
    assert cex is not None and cex.start == "new" and len(cex.steps) == 9


@pytest.mark.slow
def test_an_arbitrary_start_trace_is_saved_with_its_start(tmp_path: Path) -> None:
    result = checked("binder.page-rule-never-refuses", "binder-target-len-8")
    assert result.counterexample is not None
    path, written = save(result.counterexample, tmp_path)
    assert written
    raw = json.loads(path.read_text())
    assert raw["#meta"]["start"] == "arbitrary"
    loaded = load_text(path.read_text(), str(path))
    assert loaded.initial == result.counterexample.initial and len(loaded.actions) == 1


def test_a_trace_from_new_says_so() -> None:
    result = checked("binder.keeps-others", "binder-dereg-removes-last")
    assert result.counterexample is not None
    assert json.loads(result.counterexample.text())["#meta"]["start"] == "new"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_violation_does_not_stop_the_other_checks(jobs: int) -> None:
    pairs: list[tuple[SequenceProperty, ModelSpec]] = [
        # A violation found within three operations from new(): the cheapest one to find.
        (PROPS["binder.keeps-others"], faulted("binder-dereg-removes-last")),
        (PROPS["binder.failed-register-unchanged"], model_named("binder/v6")),
    ]
    results = list(run_checks(pairs, RunOptions(PAGE, TIMEOUT_MS, jobs)))
    assert [r.verdict for r in results] == [Verdict.VIOLATED, Verdict.PROVED]
    assert results[0].counterexample is not None


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_internal_error_in_one_check_leaves_the_others(monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    real_check = runner.check

    def crashing(prop: SequenceProperty, *args: object, **kwargs: object) -> Result:
        if prop.id == "binder.keeps-others":
            raise RuntimeError("injected\nover two lines")
        return real_check(prop, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "check", crashing)
    v6 = model_named("binder/v6")
    pairs = [(PROPS["binder.keeps-others"], v6), (PROPS["binder.failed-register-unchanged"], v6)]
    results = list(run_checks(pairs, RunOptions(PAGE, TIMEOUT_MS, jobs)))
    assert [r.prop.id for r in results] == ["binder.keeps-others", "binder.failed-register-unchanged"]
    assert results[0].verdict is Verdict.UNKNOWN
    assert results[0].detail == "internal error: RuntimeError: injected over two lines"
    assert results[1].verdict is Verdict.PROVED
    assert exit_code(results) == EXIT_ERROR


def test_verify_run_reports_every_row_and_exits_2_after_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real_check = runner.check

    def crashing(prop: SequenceProperty, model: ModelSpec, *args: object, **kwargs: object) -> Result:
        if model.name == "binder/v4":
            raise KeyError("boom")
        return real_check(prop, model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "check", crashing)
    args = ["run", "binder.failed-register-unchanged", "--jobs", "1", "--no-cache"]
    code = main([*args, "--counterexamples", str(tmp_path / "cex")])
    out = capsys.readouterr().out
    assert code == EXIT_ERROR
    assert "internal error: KeyError: 'boom'" in out
    for policy in ("v6", "naive", "never"):
        assert any(line.startswith("PROVED") and f"binder/{policy}" in line for line in out.splitlines()), policy
