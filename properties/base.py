"""What a property is: a stable id, a statement, its two encodings, its expectation."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.catalogue import ModelSpec
from models.machine import Platform
from models.vec import Reserve, ShrinkTo, Step
from models.vec_z3 import SymPlatform, SymStep


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


Property = StepProperty | Scenario
