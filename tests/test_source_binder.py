"""verify source on binder's context.rs: the policy read from the source is one of the model's, or none."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.allocator import Outcome
from models.binder import BinderAction, Deregister, Register, binder_step, policy_named
from models.machine import Platform
from models.vec import VecState
from verify.cli import main
from verify.source.binder import DEREGISTER, IMPL, REGISTER, concrete_step, function_for
from verify.source.binder_conformance import check, differing
from verify.source.locate import Unsupported, find_method

DATA = Path(__file__).parent / "data" / "source"


def _line_of(path: Path, text: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


@pytest.mark.parametrize(("name", "policy"), [("binder_v6.rs", "v6"), ("binder_v4.rs", "v4")])
def test_the_series_policies_are_proved_to_be_the_models(
    name: str, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / name
    assert main(["source", "--binder", str(path)]) == 0
    register, deregister = capsys.readouterr().out.splitlines()
    assert register.startswith(f"PROVED conformant  register_process ({path}:{_line_of(path, 'fn register_process(')})")
    rule = policy_named(policy).rule
    where = f"({path}:{_line_of(path, 'fn deregister_process(')})"
    expected = f"PROVED conformant  deregister_process {where} is the model's policy {policy} ({rule})"
    assert deregister.startswith(expected)


# Each deviation from the series: the line that deviates, which the distinguishing run goes through or stops before.
@pytest.mark.parametrize(("name", "line_text"), [
    ("binder_trigger_cap8.rs", "if len < cap / 8 {"),
    ("binder_trigger_le.rs", "if len <= cap / 4 {"),
])
def test_another_trigger_matches_no_policy_with_a_replayed_input_per_policy(
    name: str, line_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / name
    assert main(["source", "--binder", str(path)]) == 1
    out = capsys.readouterr().out
    assert "PROVED conformant  register_process" in out
    assert "VIOLATED  deregister_process" in out
    assert "matches none of the model's policies (v6, v4, naive, never)" in out
    against = re.findall(r"^  against (\w+) ", out, re.M)
    assert against == ["v6", "v4", "naive", "never"]
    lines = re.findall(r"source lines run: \S+?:([\d, ]+)", out)
    assert len(lines) == 4 and all(str(_line_of(path, line_text)) in run.split(", ") for run in lines)


def test_each_reported_difference_replays_on_both_concrete_sides() -> None:
    fn = find_method(DATA / "binder_trigger_cap8.rs", IMPL, DEREGISTER)
    result = check(fn, DEREGISTER)
    assert result.matches is None and len(result.differences) == 4
    plat = Platform(8, 4096)
    for diff in result.differences:
        pre, action = diff.source.pre, diff.source.action
        assert pre.invariant_violations(plat) == []
        assert diff.model == binder_step(plat, diff.policy, pre, action)
        assert differing(concrete_step(fn, plat, pre, action), diff.model)
    v6 = result.differences[0]
    # Below a quarter but not an eighth: v6 shrinks, the deviation does not.
    assert v6.source.shrink_target is None and v6.model.shrink_attempted
    assert v6.source.post.len < v6.source.post.layout_len // 4 and v6.source.post.len >= v6.source.post.layout_len // 8


def test_a_registration_dropping_the_push_error_is_found() -> None:
    path = DATA / "binder_push_error_dropped.rs"
    fn = find_method(path, IMPL, REGISTER)
    result = check(fn, REGISTER)
    assert result.matches is None
    (diff,) = result.differences
    assert diff.differing() == ["result"]
    assert diff.source.ok and not diff.model.ok and not diff.source.action.outcome.kmalloc_ok


def test_an_unsupported_construct_in_the_policy_is_unknown_with_file_line_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = DATA / "binder_loop.rs"
    assert main(["source", "--binder", str(path)]) == 2
    register, deregister = capsys.readouterr().out.splitlines()
    assert register.startswith("PROVED conformant  register_process")
    line = _line_of(path, "while manager.all_procs.len()")
    assert deregister.startswith(f"UNKNOWN  deregister_process: {path}:{line}:9: unsupported while loop: `while ")


def test_a_kernel_tree_checks_kvec_and_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kvec = tmp_path / "rust" / "kernel" / "alloc" / "kvec.rs"
    context = tmp_path / "drivers" / "android" / "binder" / "context.rs"
    for copy, source in ((kvec, "kvec_v6.rs"), (context, "binder_v6.rs")):
        copy.parent.mkdir(parents=True)
        shutil.copy(DATA / source, copy)
    assert main(["source", str(tmp_path)]) == 0
    rows = [line.split("  ")[1].split()[0] for line in capsys.readouterr().out.splitlines()]
    assert rows == ["shrink_to", "reserve", "register_process", "deregister_process"]


def test_a_binder_file_without_the_functions_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "context.rs"
    empty.write_text("impl Context {\n    fn new() {}\n}\n")
    assert main(["source", "--binder", str(empty)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no `fn register_process` in an `impl Context` block" in err


OUTCOMES = st.builds(Outcome, st.booleans(), st.booleans())
OPERATIONS = st.lists(st.tuples(st.booleans(), st.integers(0, 40), OUTCOMES), max_size=40)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from([("binder_v6.rs", "v6"), ("binder_v4.rs", "v4")]), OPERATIONS)
def test_the_concrete_source_and_the_model_agree_on_random_operations(
    fixture: tuple[str, str], operations: list[tuple[bool, int, Outcome]]
) -> None:
    """Registrations (new processes) and deregistrations (of any process, present or not) from KVVec::new()."""
    name, policy = fixture
    functions = {f: find_method(DATA / name, IMPL, f) for f in (REGISTER, DEREGISTER)}
    plat = Platform(8, 4096)
    state = VecState()
    for number, (register, pid, outcome) in enumerate(operations):
        # Process 100 + n is the one the nth operation registers (if it did): a deregistration may find it or not.
        action: BinderAction = Register(100 + number, outcome) if register else Deregister(100 + pid, outcome)
        source = concrete_step(functions[REGISTER if register else DEREGISTER], plat, state, action)
        model = binder_step(plat, policy_named(policy), state, action)
        assert differing(source, model) == []
        state = model.post


def test_after_a_spike_both_shrink_alike() -> None:
    """The random operations above need not reach a shrink: this sequence does, on both sides."""
    functions = {f: find_method(DATA / "binder_v6.rs", IMPL, f) for f in (REGISTER, DEREGISTER)}
    plat = Platform(8, 4096)
    state = VecState()
    targets = []
    for action in [*(Register(pid) for pid in range(16)), *(Deregister(pid) for pid in range(15))]:
        source = concrete_step(functions[function_for(action)], plat, state, action)
        model = binder_step(plat, policy_named("v6"), state, action)
        assert differing(source, model) == []
        targets.append(source.shrink_target)
        state = model.post
    assert [t for t in targets if t is not None] == [6]  # 3 of 16 left: 3 < 16/4, shrink to 6
    assert state.len == 1 and state.layout_len == 6


def test_the_cross_check_can_fail_on_a_deviating_trigger() -> None:
    fn = find_method(DATA / "binder_trigger_le.rs", IMPL, DEREGISTER)
    plat = Platform(8, 4096)
    state = VecState()
    for pid in range(4):
        state = binder_step(plat, policy_named("v6"), state, Register(pid)).post
    state = binder_step(plat, policy_named("v6"), state, Deregister(0)).post
    state = binder_step(plat, policy_named("v6"), state, Deregister(1)).post
    # The third removal from four leaves len 1 == cap/4: `<=` shrinks there, v6 does not.
    action = Deregister(2)
    assert "shrink_to called" in differing(concrete_step(fn, plat, state, action), binder_step(
        plat, policy_named("v6"), state, action))


@pytest.mark.parametrize(("closure", "kind"), [
    ("|p| !Arc::ptr_eq(p, proc)", "drop"),
    ("|p| Arc::as_ptr(p) != Arc::as_ptr(proc)", "drop"),
    ("|p| Arc::as_ptr(p) < Arc::as_ptr(proc)", "unsupported operator `<` on these operands"),
    ("|p| !Arc::ptr_eq(proc, p)", "drop"),
    ("|_p| false", "clear"),
    ("|_p| true", "keep"),
    ("|p| Arc::ptr_eq(p, proc)", "keeps only the process itself"),
])
def test_the_retain_closure_is_decided_for_every_element(tmp_path: Path, closure: str, kind: str) -> None:
    """Two concrete runs of the closure (the process itself, another one) give what retain does to the list."""
    text = (DATA / "binder_v6.rs").read_text().replace("|p| !Arc::ptr_eq(p, proc)", closure)
    path = tmp_path / "context.rs"
    path.write_text(text)
    fn = find_method(path, IMPL, DEREGISTER)
    plat = Platform(8, 4096)
    pre = VecState()
    for pid in range(3):
        pre = binder_step(plat, policy_named("v6"), pre, Register(pid)).post
    action = Deregister(1)
    if kind in ("drop", "clear", "keep"):
        after = concrete_step(fn, plat, pre, action).post
        expected = {"drop": [0, 2], "clear": [], "keep": [0, 1, 2]}[kind]
        assert [after.elems.at(i) for i in range(after.len)] == expected
    else:
        with pytest.raises(Unsupported, match=re.escape(kind)):
            concrete_step(fn, plat, pre, action)


def test_is_empty_on_the_list_is_read(tmp_path: Path) -> None:
    text = (DATA / "binder_v6.rs").read_text().replace("if len < cap / 4 {", "if !manager.all_procs.is_empty() {")
    path = tmp_path / "context.rs"
    path.write_text(text)
    fn = find_method(path, IMPL, DEREGISTER)
    plat = Platform(8, 4096)
    pre = binder_step(plat, policy_named("v6"), VecState(), Register(0)).post
    pre = binder_step(plat, policy_named("v6"), pre, Register(1)).post
    assert concrete_step(fn, plat, pre, Deregister(0)).shrink_target == 2  # one left: not empty, shrink to len*2
    assert concrete_step(fn, plat, VecState(), Deregister(0)).shrink_target is None  # empty: no shrink
