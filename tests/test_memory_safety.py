"""Memory safety of every allocator effect, and "nothing to shrink, nothing done": both sides of each judge."""

from __future__ import annotations

from dataclasses import replace

import pytest
import z3

from models import vec_z3
from models.allocator import Allocation, Copy, Free, Kind, Outcome
from models.catalogue import model_named
from models.elements import Elements
from models.machine import Platform
from models.vec import Action, Push, Reserve, ShrinkTo, Step, VecState, step
from models.vec_z3 import SymPlatform, lift_action, lift_state
from properties.base import StepProperty, Verdict
from properties.shrink import PROPERTIES
from verify.check.crosscheck import CrossCheckError, check_properties
from verify.check.engine import check
from verify.search.solver import Solving
from verify.traces.replay import replay
from verify.traces.trace import load_text

PAGE, TIMEOUT_MS = 4096, 60_000
PROPS: dict[str, StepProperty] = {p.id: p for p in PROPERTIES}
U8 = Platform(1)
# A 3-page vmalloc buffer of u8 holding 10 bytes; shrink_to(0) replaces it with a 10-byte kmalloc object.
VMALLOC_PRE = VecState(10, 3 * PAGE, Allocation(1, Kind.VMALLOC, 3 * PAGE, 3 * PAGE), Elements.identities(10), 2)


def z3_verdict(plat: Platform, pre: VecState, action: Action, prop: StepProperty, faults: frozenset[str]) -> bool:
    """The Z3 predicate on the encoded step (with the same faults); it must be forced one way."""
    sp = SymPlatform(plat)
    sym_pre = lift_state(pre)
    sym_action = lift_action(action, sym_pre)
    st = vec_z3.step(sp, sym_pre, sym_action, faults)
    holds = prop.z3(sp, st, sym_action)
    solver = z3.Solver()
    solver.add(*st.constraints)
    can_hold = solver.check(holds) == z3.sat
    can_fail = solver.check(z3.Not(holds)) == z3.sat
    assert can_hold != can_fail, "the predicate is not determined by the concrete step"
    return can_hold


# (property, fault, pre-state, action): each seeded fault breaks its property on this step, on both sides.
FAULTY = [
    ("shrink.memory-safe", "copy-one-too-long", VMALLOC_PRE, ShrinkTo(0)),
    ("shrink.memory-safe", "free-before-copy", VMALLOC_PRE, ShrinkTo(0)),
    ("shrink.memory-safe", "old-buffer-leaked", VMALLOC_PRE, ShrinkTo(0)),
    ("shrink.nothing-to-shrink", "noop-path-reallocs", VMALLOC_PRE, ShrinkTo(3 * PAGE)),
    ("reserve.memory-safe", "krealloc-copies-new-size", VecState(1, 8, Allocation(1, Kind.KMALLOC, 8, 8),
                                                                 Elements.identities(1), 2), Reserve(20)),
]


@pytest.mark.parametrize(("prop_id", "fault", "pre", "action"), FAULTY, ids=[f"{f[0]}-{f[1]}" for f in FAULTY])
def test_both_judges_hold_on_the_kernel_step_and_fail_on_the_faulty_one(
    prop_id: str, fault: str, pre: VecState, action: Action
) -> None:
    prop = PROPS[prop_id]
    good = step(U8, pre, action)
    assert prop.py(U8, good) and z3_verdict(U8, pre, action, prop, frozenset())
    bad = step(U8, pre, action, frozenset({fault}))
    assert not prop.py(U8, bad)
    assert not z3_verdict(U8, pre, action, prop, frozenset({fault}))


def test_a_copy_past_the_new_buffer_is_an_overrun() -> None:
    good = step(U8, VMALLOC_PRE, ShrinkTo(0))
    assert good.effects.copied == Copy(1, 2, 10) and good.effects.allocated is not None
    judge = PROPS["shrink.memory-safe"].py
    assert judge(U8, good)
    # One byte past the 10 requested: the kmalloc object has 16 physical bytes, but only 10 were asked for.
    assert not judge(U8, replace(good, effects=replace(good.effects, copied=Copy(1, 2, 11))))
    # Reading past the source's usable size, from a freed or unknown allocation, into itself: all unsafe.
    assert not judge(U8, replace(good, effects=replace(good.effects, copied=Copy(1, 2, 3 * PAGE + 1))))
    assert not judge(U8, replace(good, effects=replace(good.effects, copy_before_free=False)))
    assert not judge(U8, replace(good, effects=replace(good.effects, copied=Copy(7, 2, 10))))
    assert not judge(U8, replace(good, effects=replace(good.effects, copied=Copy(2, 2, 10))))
    assert not judge(U8, replace(good, effects=replace(good.effects, freed=Free(7, 3 * PAGE))))
    assert not judge(U8, replace(good, effects=replace(good.effects, freed=None)))  # the old buffer leaks


def test_the_other_properties_miss_the_overrun_that_memory_safety_catches() -> None:
    bad = step(U8, VMALLOC_PRE, ShrinkTo(0), frozenset({"copy-one-too-long"}))
    others = [p for p in PROPERTIES if p.id != "shrink.memory-safe" and p.operation is ShrinkTo and p.applies(
        model_named("kvvec-v6/u8")) and not p.expect_violated(model_named("kvvec-v6/u8"))]
    assert others and all(p.py(U8, bad) for p in others)


def test_nothing_to_shrink_holds_for_every_target_at_or_above_the_capacity() -> None:
    judge = PROPS["shrink.nothing-to-shrink"].py
    for min_capacity in (0, 9, 10, 3 * PAGE, 3 * PAGE + 1, 2**64 - 1):
        pre = replace(VMALLOC_PRE, len=10) if min_capacity else VMALLOC_PRE
        for outcome in (Outcome(), Outcome(False, False)):
            s = step(U8, pre, ShrinkTo(min_capacity, outcome))
            assert judge(U8, s)
            assert (s.effects.calls == ()) == (min_capacity >= 3 * PAGE)


@pytest.mark.parametrize("model", ["kvvec-v6/u8", "kvvec-v6/t24", "kvvec-v6/pow2"])
@pytest.mark.parametrize("prop_id", ["shrink.memory-safe", "reserve.memory-safe", "shrink.nothing-to-shrink"])
def test_the_new_properties_are_proved_with_a_witness(prop_id: str, model: str) -> None:
    result = check(PROPS[prop_id], model_named(model), PAGE, Solving(TIMEOUT_MS))
    assert result.verdict is Verdict.PROVED, result.detail


def test_a_reserve_counterexample_is_a_reserve_call_that_replays() -> None:
    model = model_named("kvvec-v6/u8").with_faults(frozenset({"krealloc-copies-new-size"}))
    result = check(PROPS["reserve.memory-safe"], model, PAGE, Solving(TIMEOUT_MS))
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    last = result.counterexample.steps[-1]
    assert isinstance(last, Step) and isinstance(last.action, Reserve)
    cp, pre_buf = last.effects.copied, last.pre.buf
    assert cp is not None and pre_buf is not None and cp.src == pre_buf.id and cp.nbytes > pre_buf.physical
    assert replay(load_text(result.counterexample.text(), "trace")).reproduces


def test_the_cross_check_judges_reserve_memory_safety_on_a_push() -> None:
    pre = VecState(8, 8, Allocation(1, Kind.KMALLOC, 8, 8), Elements.identities(8), 2)
    s = step(U8, pre, Push(100))
    assert s.effects.copied == Copy(1, 2, 8)  # krealloc moves the full 8-byte object into a 16-byte one
    prop = PROPS["reserve.memory-safe"]
    check_properties(U8, (prop,), s)
    negated = replace(prop, py=lambda p, taken: not prop.py(p, taken))
    with pytest.raises(CrossCheckError, match="reserve.memory-safe .* the Python judge says False"):
        check_properties(U8, (negated,), s)
