"""Hypothesis cross-check: the concrete source back end on the v6 fixture and the reference model agree.

Both shrink_to and reserve, on random reachable states, arguments and allocator outcomes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from models.allocator import Outcome
from models.elements import Elements
from models.machine import Platform
from models.vec import ShrinkTo, VecState, step, with_capacity
from verify.source import concrete
from verify.source.conformance import RESERVE, SHRINK_TO, Operation, differing, shrink_to_function
from verify.source.locate import find_method

V6_PATH = Path(__file__).parent / "data" / "source" / "kvec_v6.rs"
V6 = shrink_to_function(V6_PATH)
V6_RESERVE = find_method(V6_PATH, RESERVE.impl, RESERVE.name)
OUTCOMES = st.builds(Outcome, st.booleans(), st.booleans())


@st.composite
def pre_states(draw: st.DrawFn) -> tuple[Platform, VecState]:
    """A state the model reaches: `with_capacity` under some outcome, then some length within the capacity."""
    plat = Platform(draw(st.sampled_from([0, 1, 3, 8, 24, 4096])), draw(st.sampled_from([4096, 16384])))
    capacity = draw(st.one_of(st.integers(0, 64), st.integers(0, 6 * plat.page_size)))
    grown = with_capacity(plat, capacity, draw(OUTCOMES))
    state = grown.post
    length = draw(st.integers(0, min(state.capacity(plat), 8 * plat.page_size)))
    return plat, replace(state, len=length, elems=Elements.identities(length))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(pre_states(), st.sampled_from([SHRINK_TO, RESERVE]), st.integers(0, (1 << 64) - 1) | st.integers(0, 8 * 65536),
       OUTCOMES)
def test_the_source_back_end_and_the_model_agree(
    setting: tuple[Platform, VecState], operation: Operation, argument: int, outcome: Outcome
) -> None:
    plat, pre = setting
    assert pre.invariant_violations(plat) == []
    action = operation.action(argument, outcome)
    fn = V6 if operation is SHRINK_TO else V6_RESERVE
    source, lines = concrete.transition(fn, plat, pre, action)
    assert differing(source, step(plat, pre, action)) == []
    assert lines  # the run went through the function's lines


def test_the_source_back_end_disagrees_where_the_source_deviates() -> None:
    """The cross-check can fail: on the `<` page rule, equal page counts replace the buffer."""
    deviant = shrink_to_function(Path(__file__).parent / "data" / "source" / "kvec_page_rule_lt.rs")
    plat = Platform(1)
    pre = with_capacity(plat, 4098, Outcome(kmalloc_ok=False)).post
    action = ShrinkTo(4097)
    assert differing(concrete.transition(V6, plat, pre, action)[0], step(plat, pre, action)) == []
    assert "allocator calls" in differing(concrete.transition(deviant, plat, pre, action)[0], step(plat, pre, action))
