"""Seeded faults reach the Vec steps inside binder's operations, identically in Python and Z3."""

from __future__ import annotations

import pytest
import z3

from models import binder_z3
from models.allocator import ALL_OUTCOMES, Outcome
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, Deregister, Register, binder_step, policy_named, with_faults
from models.catalogue import model_named
from models.faults import BINDER_VEC_FAULTS
from models.machine import Platform
from models.vec import VecState
from models.vec_z3 import SymPlatform, lift_state
from properties.base import Verdict
from properties.binder import PROPERTIES, replay
from verify.check.engine import check
from verify.search.solver import Solving

PLAT = Platform(ELEM_SIZE, 64)
V6 = policy_named("v6")


def _prop(prop_id: str) -> object:
    return next(p for p in PROPERTIES if p.id == prop_id)


def _registered(n: int, faults: frozenset[str] = frozenset()) -> VecState:
    steps = replay(PLAT, with_faults(V6, faults), tuple(Register(i) for i in range(n)))
    return steps[-1].post


def _ids(v: VecState) -> list[int]:
    return [v.elems.at(i) for i in range(v.len)]


def test_retain_drops_next_removes_the_neighbour_too() -> None:
    fault = frozenset({"vec-in-binder-retain-drops-next"})
    state = _registered(5, fault)
    taken = binder_step(PLAT, with_faults(V6, fault), state, Deregister(1))
    assert _ids(taken.post) == [0, 3, 4]
    # The last one has no neighbour: only it goes.
    assert _ids(binder_step(PLAT, with_faults(V6, fault), state, Deregister(4)).post) == [0, 1, 2, 3]
    assert _ids(binder_step(PLAT, V6, state, Deregister(1)).post) == [0, 2, 3, 4]


def test_failed_push_drops_last_loses_an_element_on_failure_only() -> None:
    fault = frozenset({"vec-in-binder-failed-push-drops-last"})
    state = _registered(4, fault)  # len 4, capacity 4: the next push must grow
    assert state.len == state.layout_len == 4
    failed = binder_step(PLAT, with_faults(V6, fault), state, Register(9, Outcome(False, False)))
    assert not failed.ok and _ids(failed.post) == [0, 1, 2] and failed.post.layout_len == 4
    assert binder_step(PLAT, V6, state, Register(9, Outcome(False, False))).post == state
    assert _ids(binder_step(PLAT, with_faults(V6, fault), state, Register(9)).post) == [0, 1, 2, 3, 9]


def test_push_stale_request_breaks_the_allocation_size_invariant_when_growing() -> None:
    fault = frozenset({"vec-in-binder-push-stale-request"})
    state = _registered(2, fault)  # capacity 2
    grown = binder_step(PLAT, with_faults(V6, fault), state, Register(9))
    assert grown.post.layout_len == 4 and grown.post.buf is not None
    assert grown.post.buf.requested == 2 * ELEM_SIZE  # the old layout's bytes, not 32
    assert "allocation size equals layout size" in grown.post.invariant_violations(PLAT)
    assert binder_step(PLAT, V6, state, Register(9)).post.invariant_violations(PLAT) == []


@pytest.mark.parametrize(
    "faults",
    [frozenset({f}) for f in BINDER_VEC_FAULTS] + [frozenset({"copy-one-short"}), frozenset({"kmalloc-unrounded"})],
    ids=lambda f: "+".join(sorted(f)),
)
def test_z3_binder_steps_carry_the_faults_as_python_does(faults: frozenset[str]) -> None:
    """Every step of a script, under every outcome, in both encodings with the fault: the same next state."""
    policy = with_faults(V6, faults)
    sp = SymPlatform(PLAT)
    state = VecState()
    script = [Register] * 11 + [Deregister] * 4 + [Register] * 2 + [Deregister] * 9
    for n, kind in enumerate(script):
        outcome = ALL_OUTCOMES[n % len(ALL_OUTCOMES)]
        action: Register | Deregister
        # Deregister from the middle, where retain-drops-next has a neighbour to drop.
        if kind is Register or state.len == 0:
            action = Register(100 + n, outcome)
        else:
            action = Deregister(state.elems.at(state.len // 2), outcome)
        py = binder_step(PLAT, policy, state, action)
        pre = lift_state(state)
        sym_outcome = SymOutcome(z3.BoolVal(outcome.kmalloc_ok), z3.BoolVal(outcome.vmalloc_ok))
        pid = z3.BitVecVal(action.pid, 64)
        if isinstance(action, Register):
            st = binder_z3.register(sp, pre, pid, sym_outcome, f"s{n}", policy)
        else:
            st = binder_z3.deregister(sp, policy, pre, pid, sym_outcome, f"s{n}")
        post = py.post
        same = [st.post.len == post.len, st.post.layout_len == post.layout_len, st.ok == py.ok]
        same.append(st.post.buf.live == (post.buf is not None))
        if post.buf is not None:
            same += [st.post.buf.requested == post.buf.requested, st.post.buf.physical == post.buf.physical]
        same += [st.post.elems[i] == post.elems.at(i) for i in range(post.len)]
        solver = z3.Solver()
        solver.add(*st.constraints, z3.Not(z3.And(same)))
        assert solver.check() == z3.unsat, f"step {n}: {action}"
        state = post


def test_a_shrink_fault_reaches_the_binder_explorer_and_is_replayed() -> None:
    # shrink_to's target ignoring min_capacity makes v4's shrink_to(cap/2) a shrink_to(len): the next
    # registration regrows, as naive's does; found by the explorer, replayed on the faulty Python model.
    model = model_named("binder/v4").with_faults(frozenset({"target-ignores-min-capacity"}))
    result = check(_prop("binder.no-immediate-regrow"), model, 4096, Solving(60_000))  # type: ignore[arg-type]
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    shrink, regrow = result.counterexample.steps[-2:]
    assert isinstance(shrink.action, Deregister) and shrink.post.layout_len == shrink.post.len < shrink.pre.layout_len
    assert isinstance(regrow.action, Register) and regrow.reallocates
    healthy = check(_prop("binder.no-immediate-regrow"), model_named("binder/v4"), 4096, Solving(60_000))  # type: ignore[arg-type]
    assert healthy.verdict is Verdict.PROVED


def test_a_shrink_fault_reaches_the_binder_z3_encoding() -> None:
    # The vmalloc path copying one element short loses the last process: keeps-others sees it.
    prop = _prop("binder.keeps-others")
    faulty = with_faults(V6, frozenset({"copy-one-short"}))
    assert prop.check(faulty, 4096, Solving(60_000), 8).verdict is Verdict.VIOLATED  # type: ignore[attr-defined]
    assert prop.check(V6, 4096, Solving(60_000), 8).verdict is Verdict.PROVED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fault", "killer"),
    [
        ("vec-in-binder-retain-drops-next", "binder.keeps-others"),
        ("vec-in-binder-failed-push-drops-last", "binder.failed-register-unchanged"),
        ("vec-in-binder-push-stale-request", "binder.invariant-forever"),
    ],
)
def test_each_vec_in_binder_fault_breaks_its_property_in_z3(fault: str, killer: str) -> None:
    prop = _prop(killer)
    found = prop.check(with_faults(V6, frozenset({fault})), 4096, Solving(60_000), 8)  # type: ignore[attr-defined]
    assert found.verdict is Verdict.VIOLATED


def test_the_same_shrink_fault_is_caught_by_bmc_with_a_replayed_trace() -> None:
    model = model_named("binder/v4").with_faults(frozenset({"target-ignores-min-capacity"}))
    result = check(_prop("binder.no-immediate-regrow.bmc"), model, 4096, Solving(60_000))  # type: ignore[arg-type]
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    shrink, regrow = result.counterexample.steps[-2:]
    assert isinstance(shrink.action, Deregister) and shrink.post.layout_len == shrink.post.len < shrink.pre.layout_len
    assert isinstance(regrow.action, Register) and regrow.reallocates
