"""binder's all_procs: the Python model, the explorer's numbers, and the policies' findings."""

from __future__ import annotations

import itertools

import pytest
import z3

from models import binder_z3
from models.allocator import ALL_OUTCOMES, Outcome
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, POLICIES, Deregister, Policy, Register, binder_step, policy_named
from models.machine import Platform
from models.vec import VecState
from models.vec_z3 import SymPlatform, lift_state
from properties.base import Verdict
from properties.binder import INSTANCE, check_thrash, exploration, regrow, replay
from verify.search.explorer import Instance, explore, realloc_cycle
from verify.search.solver import Answer, Solving

PLAT = Platform(ELEM_SIZE, 4096)


def test_registration_pushes_and_a_failed_one_changes_nothing() -> None:
    policy = policy_named("v6")
    s = binder_step(PLAT, policy, VecState(), Register(7))
    assert s.ok and s.post.len == 1 and s.post.elems.at(0) == 7 and s.reallocates
    failed = binder_step(PLAT, policy, VecState(), Register(7, Outcome(False, False)))
    assert not failed.ok and failed.post == VecState()


def test_deregistration_keeps_the_others_in_order_and_applies_the_policy() -> None:
    policy = policy_named("v6")
    steps = replay(PLAT, policy, (*(Register(i) for i in range(8)), *(Deregister(i) for i in (3, 0, 7, 5, 6))))
    last = steps[-1]
    assert [last.post.elems.at(i) for i in range(last.post.len)] == [1, 2, 4]
    # 3 processes left in a capacity of 8: 3 < 8/4 is false, so no shrink yet.
    assert last.post.capacity(PLAT) == 8 and not last.shrink_attempted
    two_left = binder_step(PLAT, policy, last.post, Deregister(2))
    assert not two_left.shrink_attempted  # 2 < 8/4 is false
    one_left = binder_step(PLAT, policy, two_left.post, Deregister(4))
    assert one_left.shrink_attempted and one_left.post.capacity(PLAT) == 2
    assert [one_left.post.elems.at(0)] == [1]


@pytest.mark.parametrize(
    ("name", "states", "edges"), [("v6", 749, 1582), ("v4", 166, 347), ("naive", 1163, 2650), ("never", 120, 240)]
)
def test_explorer_counts_on_the_fixed_instance(name: str, states: int, edges: int) -> None:
    ex = explore(policy_named(name), Instance(page_size=64, max_capacity=40))
    assert (ex.states, ex.edges) == (states, edges)
    assert ex.instance.describe() == "PAGE_SIZE 64 B, capacity <= 40"


def test_worst_case_reallocations_table_for_v6() -> None:
    table = exploration(policy_named("v6")).worst_reallocations(16)
    assert table == [1, 2, 3, 4, 4, 5, 5, 6, 7, 8, 8, 9, 9, 10, 11, 12]


def test_naive_oscillation_is_found_with_a_shortest_trace() -> None:
    from properties.binder import PROPERTIES

    prop = next(p for p in PROPERTIES if p.id == "binder.no-immediate-regrow")
    policy = policy_named("naive")
    found = prop.check(policy, 4096, Solving(60_000), 8)
    assert found.verdict is Verdict.VIOLATED
    ops = [type(a).__name__ for a in found.actions]
    assert ops == ["Register", "Register", "Deregister", "Deregister", "Register"]
    plat = INSTANCE.platform
    steps = replay(plat, policy, found.actions)
    assert steps[-2].post.capacity(plat) == 0 and steps[-1].reallocates
    # Shortest: no sequence of at most 4 operations, under any allocator outcomes, violates it.
    for length in range(1, 5):
        for kinds in itertools.product((Register, Deregister), repeat=length):
            for outcomes in itertools.product(ALL_OUTCOMES, repeat=length):
                state, trace = VecState(), []
                for pid, (kind, outcome) in enumerate(zip(kinds, outcomes, strict=True)):
                    if kind is Deregister and state.len == 0:
                        break
                    action = Register(pid, outcome) if kind is Register else Deregister(state.elems.at(0), outcome)
                    trace.append(binder_step(plat, policy, state, action))
                    state = trace[-1].post
                    assert not regrow(plat, trace, 0)


def test_v6_regrows_only_when_the_last_process_leaves() -> None:
    from properties.binder import PROPERTIES

    prop = next(p for p in PROPERTIES if p.id == "binder.no-immediate-regrow")
    found = prop.check(policy_named("v6"), 4096, Solving(60_000), 8)
    steps = replay(INSTANCE.platform, policy_named("v6"), found.actions)
    assert steps[-2].post.len == 0 and steps[-2].post.buf is None and steps[-2].pre.capacity(INSTANCE.platform) == 4


THRASHING = Policy(
    "shrink-to-fit",
    "len < cap: shrink_to(len)",
    lambda n, cap: n < cap,
    lambda n, cap: n,
    lambda n, cap: z3.ULT(n, cap),
    lambda n, cap: n,
)


def test_a_thrashing_policy_is_caught_with_a_cycle() -> None:
    cycle = realloc_cycle(explore(THRASHING, Instance(64, 16)))
    assert cycle is not None and all(s.reallocates for s in cycle)
    found = check_thrash(THRASHING, 4096, Solving(60_000), 8)
    assert found.verdict is Verdict.VIOLATED and found.mark > 0


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_z3_binder_steps_compute_the_python_next_state(policy: Policy) -> None:
    plat = Platform(ELEM_SIZE, 64)
    sp = SymPlatform(plat)
    state = VecState()
    script = [Register] * 9 + [Deregister] * 3 + [Register] + [Deregister] * 6
    for n, kind in enumerate(script):
        outcome = ALL_OUTCOMES[n % len(ALL_OUTCOMES)]
        if kind is Register or state.len == 0:
            action: Register | Deregister = Register(n, outcome)
        else:
            action = Deregister(state.elems.at(0), outcome)
        py = binder_step(plat, policy, state, action)
        pre = lift_state(state)
        sym_outcome = SymOutcome(z3.BoolVal(outcome.kmalloc_ok), z3.BoolVal(outcome.vmalloc_ok))
        if isinstance(action, Register):
            st = binder_z3.register(sp, pre, z3.BitVecVal(action.pid, 64), sym_outcome, f"s{n}", policy)
        else:
            st = binder_z3.deregister(sp, policy, pre, z3.BitVecVal(action.pid, 64), sym_outcome, f"s{n}")
        post = py.post
        live = post.buf is not None
        same = [st.post.len == post.len, st.post.layout_len == post.layout_len, st.post.buf.live == live]
        if post.buf is not None:
            vmalloc = post.buf.kind.value == "vmalloc"
            same += [st.post.buf.physical == post.buf.physical, st.post.buf.vmalloc == vmalloc]
        same.append(st.reallocates == py.reallocates)
        solver = z3.Solver()
        solver.add(*st.constraints, z3.Not(z3.And(same)))
        assert solver.check() == z3.unsat, f"step {n}: {action}"
        state = post


def test_bmc_depth_bounds_what_is_found() -> None:
    from properties.binder import PROPERTIES

    prop = next(p for p in PROPERTIES if p.id == "binder.no-immediate-regrow.bmc")
    # v6 needs 7 operations (3 registrations, 3 deregistrations, 1 registration).
    short = prop.check(policy_named("v6"), 4096, Solving(60_000), 6)
    assert short.verdict is Verdict.PROVED and "up to 6 operations" in short.scope
    found = prop.check(policy_named("v6"), 4096, Solving(60_000), 7)
    assert found.verdict is Verdict.VIOLATED and len(found.actions) == 7
    assert "v6 after its last process leaves (7 operations: register 3, deregister 3, register)" in prop.explanation


@pytest.mark.parametrize(
    ("prop_id", "policy", "inductive"),
    [
        ("binder.no-immediate-regrow.bmc", "v4", True),
        ("binder.waste-bound.bmc", "v6", True),
        ("binder.waste-bound.bmc", "naive", True),
        # v4 wastes only after longer sequences (the explorer's trace): no short induction proves it.
        ("binder.waste-bound.bmc", "v4", False),
    ],
)
def test_k_induction_lifts_bmc_to_every_sequence_only_when_the_step_holds(
    prop_id: str, policy: str, inductive: bool
) -> None:
    from properties.binder import PROPERTIES

    prop = next(p for p in PROPERTIES if p.id == prop_id)
    found = prop.check(policy_named(policy), 4096, Solving(60_000), 8)
    assert found.verdict is Verdict.PROVED
    if inductive:
        assert "1-induction" in found.scope and "every sequence of operations" in found.scope
    else:
        assert "up to 8 operations" in found.scope and found.detail == "not k-inductive for k <= 2"


def test_induction_step_is_refuted_where_the_bound_is_violated() -> None:
    from properties.binder import _sym, waste_bad
    from verify.search.sequences import induction_step

    # never: from a state with capacity 4 and one process, deregistering it leaves capacity 4 >= 4 * 1.
    solved = induction_step(_sym(4096), policy_named("never"), 1, waste_bad, Solving(60_000))
    assert solved.answer is Answer.SAT


def test_waste_bound_says_whether_the_page_rule_refused() -> None:
    from properties.binder import PROPERTIES

    prop = next(p for p in PROPERTIES if p.id == "binder.waste-bound")
    found = prop.check(policy_named("v6"), 4096, Solving(60_000), 8)
    assert found.verdict is Verdict.PROVED
    assert found.detail == "the vmalloc page rule refused no shrink in the explored instance"


def test_page_rule_refusal_is_found_for_a_policy_that_asks_for_little() -> None:
    from properties.binder import check_never_refused

    nibble = Policy(
        "nibble",
        "len < cap: shrink_to(cap - 1)",
        lambda n, cap: n < cap,
        lambda n, cap: cap - 1,
        lambda n, cap: z3.ULT(n, cap),
        lambda n, cap: cap - 1,
    )
    assert check_never_refused(nibble, 4096, Solving(60_000), 8).verdict is Verdict.VIOLATED
    assert check_never_refused(policy_named("v6"), 4096, Solving(60_000), 8).verdict is Verdict.PROVED
