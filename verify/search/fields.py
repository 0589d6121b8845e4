"""A step's outcome as fields: each an equation between a Z3 term and the Python model's value.

The vocabulary of the cross-checks of the two encodings (verify.check.crosscheck, and the
explorer's edges in verify.search.edges): a disagreement names the field that differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from models.allocator import Allocation, Kind
from models.allocator_z3 import SymAlloc
from models.binder import BinderStep
from models.binder_z3 import SymBinderStep
from verify.search.solver import new_solver

TIMEOUT_MS = 30_000


class CrossCheckError(Exception):
    """The Z3 encoding and the Python model disagree on a step (or Z3 could not decide)."""


@dataclass(frozen=True)
class Field:
    """One compared field: `formula` says the Z3 value equals the Python one, `term` is the Z3 value."""

    name: str
    formula: Any
    term: Any  # None for a quantified comparison
    expected: str


def same_value(name: str, term: Any, expected: bool | int) -> Field:
    """The field `name`: the Z3 `term` equals the Python model's `expected`."""
    if isinstance(expected, bool):
        return Field(name, term == z3.BoolVal(expected), term, str(expected))
    return Field(name, term == z3.BitVecVal(expected, term.size()), term, str(expected))


def alloc_fields(prefix: str, sym: SymAlloc, alloc: Allocation) -> list[Field]:
    return [
        same_value(f"{prefix}.id", sym.id, alloc.id),
        same_value(f"{prefix}.vmalloc", sym.vmalloc, alloc.kind is Kind.VMALLOC),
        same_value(f"{prefix}.requested", sym.requested, alloc.requested),
        same_value(f"{prefix}.physical", sym.physical, alloc.physical),
    ]


def z3_solver(constraints: tuple[Any, ...]) -> z3.Solver:
    """A solver over `constraints` with the cross-checks' timeout and a fixed seed."""
    return new_solver(constraints, TIMEOUT_MS)


def binder_step_fields(prefix: str, st: SymBinderStep, s: BinderStep) -> list[Field]:
    """A binder operation's outcome, but for the element identities, as equations over the Z3 step's terms."""
    fields = [
        same_value(f"{prefix}ok", st.ok, s.ok),
        same_value(f"{prefix}post.len", st.post.len, s.post.len),
        same_value(f"{prefix}post.layout_len", st.post.layout_len, s.post.layout_len),
        same_value(f"{prefix}post.buf.live", st.post.buf.live, s.post.buf is not None),
        same_value(f"{prefix}post.next_id", st.post.next_id, s.post.next_id),
        same_value(f"{prefix}reallocates", st.reallocates, s.reallocates),
        same_value(f"{prefix}shrink_attempted", st.shrink_attempted, s.shrink_attempted),
    ]
    if s.post.buf is not None:
        fields += alloc_fields(f"{prefix}post.buf", st.post.buf, s.post.buf)
    if s.shrink_attempted:
        fields.append(same_value(f"{prefix}shrink_ok", st.shrink_ok, s.steps[-1].ok))
    return fields
