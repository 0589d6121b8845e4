"""What a property is: a stable id, a statement, its two encodings, its expectation."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import z3

from models import vec_z3
from models.allocator_z3 import SymAlloc, SymOutcome
from models.catalogue import ModelSpec
from models.elements_z3 import ArrayElems
from models.machine import Platform
from models.vec import Push, Reserve, ShrinkTo, Step, VecState
from models.vec_z3 import SymPlatform, SymPush, SymReserve, SymShrinkTo, SymStep, SymVec, lift_state


class Verdict(enum.Enum):
    PROVED = "PROVED"
    VIOLATED = "VIOLATED"
    UNKNOWN = "UNKNOWN"
    VACUOUS = "VACUOUS"  # proved, but its premise never happens: it says nothing


# The Z3 side of a single-call property: a formula over one encoded shrink_to
# (or reserve) step that must hold for every pre-state satisfying the type invariants.
Z3Predicate = Callable[[SymPlatform, SymStep, Any], Any]
# The Python side: the same predicate evaluated on a reference-model step.
PyPredicate = Callable[[Platform, Step], bool]


def always(model: ModelSpec) -> bool:
    """Every KVVec model (binder models have sequence properties of their own)."""
    return model.policy is None


def never(_model: ModelSpec) -> bool:
    return False


@dataclass(frozen=True)
class StepProperty:
    """A property of one call of shrink_to, proved over all 64-bit values and allocator outcomes."""

    id: str
    statement: str
    z3: Z3Predicate
    py: PyPredicate
    applies: Callable[[ModelSpec], bool] = always
    expect_violated: Callable[[ModelSpec], bool] = never
    explanation: str = ""  # why a violation is expected, and what it means
    # The situation the property is about (an Err, a vmalloc buffer, a free, ...):
    # a proof counts only if some pre-state and allocator outcome reach it.
    premise: Z3Predicate | None = None
    premise_text: str = ""
    # The call the property is about: shrink_to(min_capacity), or reserve(additional) for the growth path.
    operation: type[ShrinkTo | Reserve] = ShrinkTo
    # Prove the claim conjunct by conjunct (verify.search.solver.any_of): the same proof,
    # in less solver time where the claim is a conjunction of independent clauses.
    by_conjunct: bool = False

    method = "z3: all 64-bit values"


@dataclass(frozen=True)
class Scenario:
    """A concrete operation sequence from `Vec::new()` and a claim about its end.

    Every action is concrete except the allocator outcome of the final
    shrink_to, which the solver ranges over and the replay enumerates.
    """

    id: str
    statement: str
    setup: tuple[Any, ...]  # vec actions applied before the shrink_to
    min_capacity: int
    z3: Callable[[SymPlatform, SymStep], Any]  # the claim about the final shrink_to step
    py: Callable[[Platform, Step], bool]
    applies: Callable[[ModelSpec], bool] = always
    expect_violated: Callable[[ModelSpec], bool] = never
    explanation: str = ""
    # For a claim "on Ok, ...": some allocator outcome of the final call must give Ok.
    premise: Callable[[SymPlatform, SymStep], Any] | None = None
    premise_text: str = ""

    method = "z3: concrete scenario, all allocator outcomes"


Call = ShrinkTo | Reserve | Push


@dataclass(frozen=True)
class KernelTest:
    """A kernel test case: a fixed sequence of calls from `Vec::new()`, every allocator outcome of every call free.

    Each call of the test is unwrapped, so the test reaches call i only if every
    call before it returned Ok. The claim is about each call the test reaches:
    `z3(sp, i, st, outcome)` for the i-th call, `py(plat, step)` for a replayed call (the
    call is found by its action, outcome aside: a program's calls are distinct).
    A trace is the calls up to the one whose claim fails: its setup the calls
    before (with their outcomes), its step that call.
    """

    id: str
    statement: str
    test: str  # the kernel test's function name
    calls: tuple[Call, ...]  # outcomes are not used: the solver ranges over them
    z3: Callable[[SymPlatform, int, SymStep, SymOutcome], Any]  # (platform, call index, its step, its outcome)
    py: Callable[[Platform, Step], bool]
    applies: Callable[[ModelSpec], bool] = always
    expect_violated: Callable[[ModelSpec], bool] = never
    explanation: str = ""
    # Something that must happen for the proof to say anything (the test runs to its end, ...).
    premise: Callable[[SymPlatform, Sequence[SymStep]], Any] | None = None
    premise_text: str = ""

    method = "z3: the whole test, every allocator outcome of every call"

    def index_of(self, action: Any) -> int:
        """Which call of the test `action` is, whatever its allocator outcome; ValueError if none."""
        for index, call in enumerate(self.calls):
            if type(action) is type(call) and replace(action, outcome=call.outcome) == call:
                return index
        raise ValueError(f"{action} is not a call of {self.test}")

    def encode(self, sp: SymPlatform, faults: frozenset[str]) -> tuple[list[SymStep], list[SymOutcome]]:
        """Every call in Z3 from `Vec::new()`, each with its own symbolic allocator outcome."""
        # `Vec::new()`, its elements any identities at all (nothing is stored yet).
        new = lift_state(VecState())
        state = SymVec(new.len, new.layout_len, new.buf, ArrayElems.fresh("new.elems"), new.next_id)
        steps, outcomes = [], []
        for index, call in enumerate(self.calls):
            outcome = SymOutcome.fresh(f"call{index}.outcome")
            st = vec_z3.step(sp, state, _symbolic(call, outcome), faults, prefix=f"call{index}")
            # The calls are concrete but for their outcomes: simplifying each state collapses what is
            # fixed (equivalent terms, so no loss) and cut the solver's time on ten pushes from a minute to seconds.
            st = replace(st, post=_simplified(st.post))
            steps.append(st)
            outcomes.append(outcome)
            state = st.post
        return steps, outcomes

    def claim(self, sp: SymPlatform, steps: Sequence[SymStep], outcomes: Sequence[SymOutcome]) -> Any:
        """The claim about every call the test reaches (every call before it returned Ok)."""
        reached: Any = z3.BoolVal(True)
        parts = []
        for index, (st, outcome) in enumerate(zip(steps, outcomes, strict=True)):
            parts.append(z3.Implies(reached, self.z3(sp, index, st, outcome)))
            reached = z3.And(reached, st.ok)
        return conjunction(parts)


def conjunction(parts: Sequence[Any]) -> Any:
    """All of `parts`, without a one-argument `and`, which Z3 exports and Bitwuzla refuses to read."""
    if not parts:
        return z3.BoolVal(True)
    return parts[0] if len(parts) == 1 else z3.And(list(parts))


def _simplified(v: SymVec) -> SymVec:
    b = v.buf
    buf = SymAlloc(*(z3.simplify(x) for x in (b.live, b.id, b.vmalloc, b.requested, b.physical)))
    return SymVec(z3.simplify(v.len), z3.simplify(v.layout_len), buf, v.elems, z3.simplify(v.next_id))


def _symbolic(call: Call, outcome: SymOutcome) -> SymShrinkTo | SymReserve | SymPush:
    if isinstance(call, ShrinkTo):
        return SymShrinkTo(vec_z3.u64(call.min_capacity), outcome)
    if isinstance(call, Reserve):
        return SymReserve(vec_z3.u64(call.additional), outcome)
    return SymPush(vec_z3.u64(call.identity), outcome)


Property = StepProperty | Scenario | KernelTest
