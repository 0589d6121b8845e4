"""The Python reference model and the Z3 encoding compute the same step, on random and on chosen traces."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize

from models import binder_z3, vec_z3
from models.allocator import ALL_OUTCOMES, Call, Copy, Fn, Free, Kind, Outcome
from models.binder import ELEM_SIZE, POLICIES, BinderAction, Deregister, Policy, Register, policy_named
from models.binder_z3 import SymBinderStep
from models.elements import GARBAGE, Elements
from models.machine import ISIZE_MAX, USIZE_MAX, Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate, VecState, step
from models.vec_z3 import SymAction, SymPlatform, SymPush, SymShrinkTo, SymStep, SymVec
from properties import binder as binder_properties
from properties.binder import JUDGED_PREDICATES, ONE_STEP_PREDICATES, WASTE, replay
from properties.shrink import PROPERTIES
from verify.check import agreement, crosscheck, stateful
from verify.check.crosscheck import (
    CrossCheckError,
    check_binder_transition,
    check_invariants,
    check_properties,
    check_transition,
    check_unrolling,
)
from verify.check.stateful import (
    BINDER_PAGE_SIZES,
    ELEM_SIZES,
    BinderMachine,
    Coverage,
    VecMachine,
    one_choice_each,
    outcome_name,
)
from verify.cli import main
from verify.search.edges import check_explored_edges
from verify.search.explorer import Instance, explore
from verify.search.sequences import Unrolling

KM, VM_ONLY, KM_ONLY, NONE = Outcome(True, True), Outcome(False, True), Outcome(True, False), Outcome(False, False)

# Mostly successes, so traces build up buffers; every combination of failures still appears.
outcomes = st.sampled_from([KM, KM, KM, VM_ONLY, VM_ONLY, KM_ONLY, NONE])
# Counts whose bytes cross a page (or KMALLOC_MAX_SIZE for a big T), small counts, and overflow edges.
additionals = st.one_of(
    st.integers(1000, 20000),
    st.integers(0, 8),
    st.sampled_from([ISIZE_MAX // 8, ISIZE_MAX, USIZE_MAX]),
)


def identities(elems: Elements) -> list[int]:
    return [first + k for first, count in elems.runs if first != GARBAGE for k in range(count)]


def draw_action(data: st.DataObject, v: VecState, fresh: int) -> Action:
    # Hypothesis leans towards the first choice of each draw: push and reserve build up a buffer to shrink.
    ops = ["push"] * 3 + ["reserve"] * 3 + ["shrink"] * 3 + ["retain", "retain", "pop", "truncate", "clear"]
    op = data.draw(st.sampled_from(ops))
    if op == "shrink":
        # Mostly below the capacity, so that something happens; sometimes at or above it, or huge.
        min_capacity = data.draw(
            st.one_of(st.integers(0, v.len), st.integers(0, v.layout_len + 40), st.just(USIZE_MAX))
        )
        return ShrinkTo(min_capacity, data.draw(outcomes))
    if op == "reserve":
        return Reserve(data.draw(additionals), data.draw(outcomes))
    if op == "push":
        return Push(fresh, data.draw(outcomes))
    if op == "pop":
        return Pop()
    if op == "truncate":
        return Truncate(data.draw(st.integers(0, v.len + 2)))
    if op == "clear":
        return Clear()
    present = identities(v.elems)
    if len(present) > 0 and data.draw(st.booleans()):
        return Retain(data.draw(st.sampled_from(present)))
    return Retain(fresh)  # an identity not in the vector: nothing is dropped


# Each element size gets its own 20 examples: drawn as one more variable, a size
# could get a single trace in a run (the size decides which paths are reachable).
# 20, not more: the stateful machines below run the same actions for each element size, steered
# to the allocator's edges, and test_every_branch_and_boundary_is_reached_within_the_budget
# requires every branch and boundary reached; these unsteered traces add variety, not coverage.
@pytest.mark.parametrize("elem_size", ELEM_SIZES)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), length=st.integers(1, 12))
def test_random_traces_agree(elem_size: int, data: st.DataObject, length: int) -> None:
    plat = Platform(elem_size, 4096)
    v = VecState()
    fresh = 100  # push identities: fresh and distinct, so retain drops exactly one element in both models
    for _ in range(length):
        action = draw_action(data, v, fresh)
        fresh += 1
        s = step(plat, v, action)
        check_transition(plat, s)
        v = s.post
        # check_transition's precondition for the next step (see its docstring).
        assert v.invariant_violations(plat) == [] and not v.elems.has_garbage()


def run(plat: Platform, actions: list[Action]) -> list[Step]:
    """Apply the actions from an empty vector, cross-checking every step."""
    v, steps = VecState(), []
    for action in actions:
        s = step(plat, v, action)
        check_transition(plat, s)
        steps.append(s)
        v = s.post
    return steps


def test_shrink_to_replaces_a_vmalloc_buffer() -> None:
    plat = Platform(8)
    steps = run(plat, [Reserve(1000, VM_ONLY), Push(1), Push(2), Push(3), ShrinkTo(0, KM)])
    assert steps[0].post.buf is not None and steps[0].post.buf.kind is Kind.VMALLOC
    s = steps[-1]
    assert s.ok and s.effects.calls == (Call(Fn.ALLOC, 24, 0), Call(Fn.FREE, 0, 8000))
    assert s.effects.copied == Copy(1, 2, 24) and s.effects.freed == Free(1, 8000) and s.effects.copy_before_free
    assert s.post.buf is not None and s.post.buf.kind is Kind.KMALLOC and s.post.layout_len == 3
    assert identities(s.post.elems) == [1, 2, 3]


def test_shrink_to_frees_an_empty_vmalloc_buffer_and_reports_a_failed_alloc() -> None:
    plat = Platform(8)
    steps = run(plat, [Reserve(1000, VM_ONLY), Push(1), ShrinkTo(0, NONE), Clear(), ShrinkTo(0, NONE)])
    failed = steps[2]
    assert not failed.ok and failed.post == failed.pre and failed.effects.calls == (Call(Fn.ALLOC, 8, 0),)
    freed = steps[-1]
    assert freed.ok and freed.post.buf is None and freed.post.layout_len == 0
    assert freed.effects.calls == (Call(Fn.FREE, 0, 8000),) and freed.effects.freed == Free(1, 8000)


def test_shrink_to_shrinks_a_kmalloc_buffer_in_place() -> None:
    plat = Platform(8)
    steps = run(plat, [Reserve(10, KM), Push(1), ShrinkTo(9, NONE)])
    s = steps[-1]
    assert s.ok and s.effects.calls == (Call(Fn.REALLOC, 72, 80),)
    assert s.effects.allocated is None and s.effects.copied is None and s.effects.freed is None
    assert s.pre.buf is not None and s.post.buf == replace(s.pre.buf, requested=72)


def test_reserve_moves_a_kmalloc_buffer_to_vmalloc_by_fallback() -> None:
    plat = Platform(8)
    steps = run(plat, [Reserve(10, KM), Push(1), Push(2), Reserve(1000, VM_ONLY)])
    s = steps[-1]
    assert s.ok and s.post.buf is not None and s.post.buf.kind is Kind.VMALLOC
    assert s.effects.copied == Copy(1, 2, 96) and s.effects.freed == Free(1, 80)  # memcpy of ksize bytes
    assert identities(s.post.elems) == [1, 2]


def test_retain_drops_one_present_identity_and_ignores_an_absent_one() -> None:
    plat = Platform(24)
    steps = run(plat, [Push(1), Push(2), Push(3), Retain(2), Retain(7), Retain(1)])
    assert [identities(s.post.elems) for s in steps[3:]] == [[1, 3], [1, 3], [3]]


def test_an_altered_layout_is_caught() -> None:
    plat = Platform(8)
    s = run(plat, [Reserve(1000, VM_ONLY), Push(1), ShrinkTo(0, KM)])[-1]
    altered = replace(s, post=replace(s.post, layout_len=s.post.layout_len + 1))
    with pytest.raises(CrossCheckError, match=r"rejects the Python outcome.*post\.layout_len: Python 2, Z3 1"):
        check_transition(plat, altered)


def test_altered_effects_and_elements_are_caught() -> None:
    plat = Platform(8)
    s = run(plat, [Push(5), Push(6), Reserve(1000, VM_ONLY)])[-1]
    assert s.effects.copied is not None
    with pytest.raises(CrossCheckError, match=r"effects\.copy_nbytes: Python 8, Z3 16"):
        check_transition(plat, replace(s, effects=replace(s.effects, copied=replace(s.effects.copied, nbytes=8))))
    with pytest.raises(CrossCheckError, match=r"post\.elems\[1\]: Python 7, Z3 6"):
        check_transition(plat, replace(s, post=replace(s.post, elems=Elements(((5, 1), (7, 1))))))


def test_a_python_claim_about_uncopied_memory_is_not_the_only_outcome() -> None:
    # The pre-state holds an uncopied slot; Z3 leaves its contents free, so a
    # Python post that claims an identity there is accepted but not forced.
    plat = Platform(8)
    pre = replace(run(plat, [Reserve(4, KM)])[-1].post, len=2, elems=Elements(((1, 1), (GARBAGE, 1))))
    s = step(plat, pre, Truncate(5))
    check_transition(plat, s)
    with pytest.raises(CrossCheckError, match=r"also allows a different outcome, where post\.elems\[1\]: Python 9"):
        check_transition(plat, replace(s, post=replace(s.post, elems=Elements(((1, 1), (9, 1))))))


# The stateful machines: long random programs over every operation and allocator outcome.
# Slow (some 35 CPU seconds, README): the quick loop runs the same machines briefly through the command below.
@pytest.mark.slow
def test_every_branch_and_boundary_is_reached_within_the_budget() -> None:
    # A machine per element size and per policy (PAGE_SIZE 64), each steered to the edges.
    Coverage.reset()
    machines = one_choice_each()
    for machine in machines:
        stateful.run(machine, 4, 30 if issubclass(machine, VecMachine) else 15)
    assert Coverage.unreached(machines) == []
    assert Coverage.steps > 1000
    # Every allocator outcome reached every allocating operation.
    for op in ("push", "shrink_to"):
        assert {k for k in Coverage.seen if k.startswith(f"vec {op} ")} == {
            f"vec {op} {outcome_name(o)}" for o in ALL_OUTCOMES
        }


def test_the_binder_machine_agrees_on_both_page_sizes() -> None:
    Coverage.reset()
    stateful.run(BinderMachine, 6, 20)
    assert Coverage.steps > 30


def test_the_machine_catches_an_altered_z3_shrink_to(monkeypatch: pytest.MonkeyPatch) -> None:
    def altered(sp: SymPlatform, pre: SymVec, action: SymAction, faults: frozenset[str] = frozenset()) -> SymStep:
        s = vec_z3.step(sp, pre, action, faults)
        if isinstance(action, SymShrinkTo):  # shrink_to's result inverted
            return replace(s, ok=z3.Not(s.ok))
        return s

    monkeypatch.setattr(crosscheck, "sym_step", altered)
    with pytest.raises(CrossCheckError, match=r"action ShrinkTo\(.*ok: Python True, Z3 False"):
        stateful.run(VecMachine, 50, 30, shrink=False)


class NaiveBinderMachine(BinderMachine):
    """The binder machine under the naive policy alone, which shrinks most often: an altered shrink shows soonest."""

    @initialize(page_size=st.sampled_from(BINDER_PAGE_SIZES))
    def choose_policy(self, page_size: int) -> None:  # type: ignore[override]
        self.policy, self.plat = policy_named("naive"), Platform(ELEM_SIZE, page_size)


def test_the_binder_machine_catches_an_altered_policy_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    original = binder_z3.deregister

    def altered(sp: SymPlatform, policy: Policy, *args: Any, **kwargs: Any) -> Any:
        wrong = replace(policy, target_z3=lambda n, cap: policy.target_z3(n, cap) + 1)  # one more than asked
        return original(sp, wrong, *args, **kwargs)

    monkeypatch.setattr(binder_z3, "deregister", altered)
    wrong_target = r"Binder policy .* rejects the Python outcome; the fields in conflict are .*post.layout_len"
    with pytest.raises(CrossCheckError, match=wrong_target):
        stateful.run(NaiveBinderMachine, 50, 30, shrink=False)


def test_the_binder_machine_catches_an_altered_bmc_unrolling(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the unrolling's removal (remove_one) is altered: the single-operation check cannot see it.
    original = binder_z3.deregister

    def altered(sp: SymPlatform, policy: Policy, *args: Any, remove_one: bool = False, **kwargs: Any) -> Any:
        if remove_one:
            policy = replace(policy, trigger_z3=lambda n, cap: z3.BoolVal(False))  # never shrinks
        return original(sp, policy, *args, remove_one=remove_one, **kwargs)

    monkeypatch.setattr(binder_z3, "deregister", altered)
    never_shrinks = r"BMC's unrolling .* rejects the Python outcome; the fields in conflict are op0"
    with pytest.raises(CrossCheckError, match=never_shrinks):
        stateful.run(NaiveBinderMachine, 50, 30, shrink=False)


# Chosen runs in which each predicate BMC checks holds. Four processes come and go: on
# v6 the last one's deregistration shrinks to 0 and frees the buffer, so the next
# registration allocates again; on never the empty list keeps capacity 4 = 4 * (0 + 1).
COME_AND_GO = [*(Register(p, KM) for p in range(4)), *(Deregister(p, KM) for p in range(4))]
REGROWS = ("v6", [*COME_AND_GO, Register(9, KM)])
WASTES = ("never", COME_AND_GO)


@pytest.mark.parametrize(
    ("policy_name", "actions", "holds"), [(*REGROWS, {"regrow", "shrank-then-registers"}), (*WASTES, {"waste"})]
)
def test_bmc_predicates_agree_with_their_judges_where_they_hold(
    policy_name: str, actions: list[BinderAction], holds: set[str]
) -> None:
    plat, policy = Platform(8), policy_named(policy_name)
    steps = replay(plat, policy, tuple(actions))
    window = steps[-2:]
    assert {p.name for p in JUDGED_PREDICATES if p.judge(plat, window, 0)} == holds
    check_unrolling(plat, policy, window[0].pre, tuple(s.action for s in window))


def test_a_bmc_predicate_that_disagrees_with_its_judge_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def waste_strict(sp: SymPlatform, u: Unrolling, i: int) -> Any:
        post = u.steps[i].post  # capacity > 4 * (len + 1), where the judge says >=
        return z3.And(WASTE.at(sp, u, i), sp.capacity(post) != 4 * (post.len + 1))

    altered = tuple(replace(p, at=waste_strict) if p is WASTE else p for p in JUDGED_PREDICATES)
    monkeypatch.setattr(crosscheck, "JUDGED_PREDICATES", altered)
    plat, (policy_name, actions) = Platform(8), WASTES
    last = replay(plat, policy_named(policy_name), tuple(actions))[-1]
    with pytest.raises(CrossCheckError, match=r"op0: waste: Python True, Z3 False"):
        check_unrolling(plat, policy_named(policy_name), last.pre, (last.action,))


def test_a_single_operation_predicate_that_disagrees_with_its_judge_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # page-rule-refuses without shrink_to's Ok: a failed shrink would count as refused.
    def without_ok(st: SymBinderStep) -> Any:
        return z3.And(st.shrink_attempted, z3.Not(st.reallocates))

    altered = tuple(replace(p, at=without_ok) if p.name == "page-rule-refuses" else p for p in ONE_STEP_PREDICATES)
    monkeypatch.setattr(crosscheck, "ONE_STEP_PREDICATES", altered)
    # A two-page vmalloc buffer; v4's shrink to one page fails when both allocators do.
    grow = [*(Register(p, KM) for p in range(8)), *(Register(p, VM_ONLY) for p in range(8, 16))]
    actions = [*grow, *(Deregister(p, KM) for p in range(12)), Deregister(12, NONE)]
    plat = Platform(ELEM_SIZE, 64)
    last = replay(plat, policy_named("v4"), tuple(actions))[-1]
    assert last.shrink_attempted and not last.steps[-1].ok
    disagreement = "page-rule-refuses: the Python judge says False, the Z3 predicate says True"
    with pytest.raises(CrossCheckError, match=disagreement):
        check_binder_transition(plat, policy_named("v4"), last)


def test_type_invariants_that_disagree_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = crosscheck.type_invariant
    monkeypatch.setattr(crosscheck, "type_invariant", lambda sp, v: z3.And(original(sp, v), v.len != 3))
    plat = Platform(8)
    state = replay(plat, policy_named("v6"), tuple(Register(p, KM) for p in range(3)))[-1].post
    disagreement = "broken invariants: the Python judge says False, the Z3 predicate says True"
    with pytest.raises(CrossCheckError, match=disagreement):
        check_invariants(plat, state)


def test_a_property_whose_encodings_disagree_is_caught() -> None:
    plat = Platform(8)
    s = run(plat, [Reserve(10, KM), Push(1), ShrinkTo(0, NONE)])[-1]
    prop = next(p for p in PROPERTIES if p.id == "shrink.err-unchanged")
    check_properties(plat, (prop,), s)
    # The Python judge negated: the Z3 predicate still holds, so they part.
    negated = replace(prop, py=lambda p, step: not prop.py(p, step))
    with pytest.raises(CrossCheckError, match="shrink.err-unchanged .* the Python judge says False"):
        check_properties(plat, (negated,), s)


def test_the_crosscheck_command_reports_its_coverage(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agreement, "AGREEMENT_PAGE_SIZES", (64,))  # all page sizes take half a minute
    assert main(["crosscheck", "--examples", "2", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "  kmalloc_physical (PAGE_SIZE 64): 3199 inputs, 6 run proofs: agree" in out
    assert "  vmalloc_physical on arm64-64k-nohuge (PAGE_SIZE 65536): " in out  # the presets' limits, compared too
    assert re.search(r"^\d+ steps agreed in .* steps/s\)$", out, re.M)
    assert "vec " in out and "binder " in out and "not refuted after 2 programs per machine" in out


@pytest.mark.parametrize("flag", ["--examples", "--steps"])
def test_the_crosscheck_command_rejects_a_count_below_one(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crosscheck", flag, "0"]) == 2
    assert capsys.readouterr().err == f"verify: error: {flag} must be at least 1, not 0\n"


def test_the_crosscheck_command_exits_1_when_a_function_disagrees(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agreement, "AGREEMENT_PAGE_SIZES", (64,))
    # Nor the presets' own allocator limits (most of the command's agreement time): the coverage test above
    # runs them; here one disagreeing function on one page is the point.
    monkeypatch.setattr(agreement, "PRESETS", {})
    monkeypatch.setattr(agreement.kv, "vmalloc_physical", lambda plat, n: n // plat.page_size * plat.page_size)
    assert main(["crosscheck", "--examples", "1", "--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "vmalloc_physical (PAGE_SIZE 64): " in out and "DISAGREE" in out


def test_the_crosscheck_command_exits_1_on_a_disagreement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def inverted(sp: SymPlatform, pre: SymVec, action: SymAction, faults: frozenset[str] = frozenset()) -> SymStep:
        s = vec_z3.step(sp, pre, action, faults)
        return replace(s, ok=z3.Not(s.ok)) if isinstance(action, SymPush) else s

    monkeypatch.setattr(crosscheck, "sym_step", inverted)
    # Programs of two steps: one push shows the disagreement, and a short program is shrunk in a second, not five.
    assert main(["crosscheck", "--examples", "20", "--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "state = VecMachine0()" in out and "DISAGREEMENT in VecMachine0" in out


# The explorer's edges: every transition an explicit-state verdict uses is the Z3 encoding's.
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_explored_edge_is_the_z3_encodings_only_outcome(policy: Policy) -> None:
    ex = explore(policy, Instance())
    assert check_explored_edges(ex.instance.platform, policy, (s for _, _, s in ex.steps())) == ex.edges > 200


def test_a_python_only_slip_in_a_policy_is_caught_before_the_explorer_reports() -> None:
    # v6's target, slipped to len*3 in the Python policy only: the explorer alone would report its graph.
    slipped = replace(policy_named("v6"), target=lambda n, cap: n * 3)
    ex = explore(slipped, Instance())
    not_z3s = r"explored edge Deregister.* not the Z3 encoding's only outcome.*layout_len"
    with pytest.raises(CrossCheckError, match=not_z3s):
        check_explored_edges(ex.instance.platform, slipped, (s for _, _, s in ex.steps()))
    with pytest.raises(CrossCheckError, match="explored edge"):
        binder_properties.exploration(slipped)


def test_a_z3_slip_is_caught_where_another_policy_already_checked_the_same_edges() -> None:
    # v6's edges are checked first, so the steps under v6's decisions are known; a Z3 trigger slipped to
    # cap/5 on a policy whose Python rule is v6's must still differ on some edge.
    ex = explore(policy_named("v6"), Instance())
    steps = [s for _, _, s in ex.steps()]
    assert check_explored_edges(ex.instance.platform, policy_named("v6"), steps) == ex.edges
    slipped = replace(policy_named("v6"), trigger_z3=lambda n, cap: z3.ULT(n, z3.UDiv(cap, 5)))
    with pytest.raises(CrossCheckError, match="shrink_attempted"):
        check_explored_edges(ex.instance.platform, slipped, steps)


def test_a_slip_in_the_z3_policy_is_caught_too() -> None:
    slipped = replace(policy_named("naive"), trigger_z3=lambda n, cap: z3.ULT(n, z3.UDiv(cap, 3)))
    ex = explore(policy_named("naive"), Instance())
    with pytest.raises(CrossCheckError, match="shrink_attempted"):
        check_explored_edges(ex.instance.platform, slipped, (s for _, _, s in ex.steps()))
