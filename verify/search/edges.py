"""The explorer's edges held to the Z3 encoding, before any explicit-state verdict uses them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import z3
from z3 import z3util

from models import binder_z3
from models.allocator import Kind
from models.allocator_z3 import SymOutcome, u64
from models.binder import BinderStep, Deregister, Policy, Register
from models.binder_z3 import SymBinderStep
from models.elements_z3 import IndexElems
from models.machine import BITS, Platform
from models.vec_z3 import SymPlatform, SymVec
from verify.search.fields import CrossCheckError, binder_step_fields, z3_solver


def _canonical_pre(prefix: str) -> SymVec:
    """The explorer's canonical states: any len, layout and buffer; processes 0, 1, 2, ...; buffer 1; next id 2."""
    fresh = SymVec.fresh(prefix)
    return SymVec(fresh.len, fresh.layout_len, replace(fresh.buf, id=u64(1)), IndexElems(), u64(2))


def _binding(pre: SymVec, outcome: Any, pid: Any, s: BinderStep) -> list[tuple[Any, Any]]:
    b = s.pre.buf
    return [
        (pre.len, u64(s.pre.len)),
        (pre.layout_len, u64(s.pre.layout_len)),
        (pre.buf.live, z3.BoolVal(b is not None)),
        (pre.buf.vmalloc, z3.BoolVal(b is not None and b.kind is Kind.VMALLOC)),
        (pre.buf.requested, u64(0 if b is None else b.requested)),
        (pre.buf.physical, u64(0 if b is None else b.physical)),
        (outcome.kmalloc_ok, z3.BoolVal(s.action.outcome.kmalloc_ok)),
        (outcome.vmalloc_ok, z3.BoolVal(s.action.outcome.vmalloc_ok)),
        (pid, u64(s.action.pid)),
    ]


def _edge_terms(st: SymBinderStep) -> tuple[Any, ...]:
    """What the explorer keeps of a step, as Z3 terms: the counterpart of _edge_values."""
    b = st.post.buf
    buf = (b.live, z3.And(b.live, b.vmalloc), z3.If(b.live, b.id, u64(0)), z3.If(b.live, b.requested, u64(0)),
           z3.If(b.live, b.physical, u64(0)))
    return (st.ok, st.post.len, st.post.layout_len, *buf, st.post.next_id, st.reallocates, st.shrink_attempted,
            z3.And(st.shrink_attempted, st.shrink_ok))


def _edge_values(s: BinderStep) -> tuple[bool | int, ...]:
    b = s.post.buf
    buf = (False, False, 0, 0, 0) if b is None else (True, b.kind is Kind.VMALLOC, b.id, b.requested, b.physical)
    shrink_ok = s.shrink_attempted and s.steps[-1].ok
    return (s.ok, s.post.len, s.post.layout_len, *buf, s.post.next_id, s.reallocates, s.shrink_attempted, shrink_ok)


def _pack(terms: tuple[Any, ...]) -> Any:
    """Booleans as one bit, bit-vectors as they are, concatenated (first term in the high bits)."""
    parts = [z3.If(t, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)) if z3.is_bool(t) else t for t in terms]
    return z3.Concat(*parts)


def _pack_value(values: tuple[bool | int, ...]) -> int:
    packed = 0
    for v in values:
        width = 1 if isinstance(v, bool) else BITS
        packed = (packed << width) | int(v)
    return packed


def check_explored_edges(plat: Platform, policy: Policy, edges: Iterable[BinderStep]) -> int:
    """Raise CrossCheckError unless binder_z3 allows each explored edge, and only its outcome; the edges checked.

    The explorer runs the Python model only, so a Python-only slip in a policy would
    look like a finding. Each edge's Python step is compared with the Z3 step from
    the same pre-state, action and allocator outcome, on every field the explorer
    keeps (ok, len, layout, buffer, next id, whether it reallocates, whether it
    shrank and how that went; its states forget process identities, so elements are
    left to the stateful cross-check). The Z3 step is built once per operation kind
    over a symbolic canonical pre-state. A deregistration's retain has two free
    choices (found, at); one solver query shows that on a canonical state the
    constraints force them (the explorer deregisters process 0, found at index 0).
    With every input and both choices substituted in, the step's constraints must
    simplify to true and its fields to the Python values: the encoding admits the
    Python outcome, and since the choices are forced, no other. The fields are packed
    into one bit-vector, so each edge costs one substitution and one simplification.
    """
    sp = SymPlatform(plat)
    pre = _canonical_pre("edge")
    outcome = SymOutcome.fresh("edge.outcome")
    pid = z3.BitVec("edge.pid", BITS)
    steps = {
        Register: binder_z3.register(sp, pre, pid, outcome, "edge", policy),
        Deregister: binder_z3.deregister(sp, policy, pre, pid, outcome, "edge"),
    }
    dereg = steps[Deregister]
    choices = {str(v): v for v in z3util.get_vars(z3.And(dereg.constraints)) if ".retain." in str(v)}
    # One retain per path of a deregistration read from source (verify/source/steps.py), each with its choices.
    found = [v for name, v in choices.items() if ".found!" in name]
    at = [v for name, v in choices.items() if ".at!" in name]
    forced = z3_solver(dereg.constraints)
    forced.add(z3.UGE(pre.len, 1), pid == 0, z3.Not(z3.And(*found, *(a == 0 for a in at))))
    if forced.check() != z3.unsat:
        raise CrossCheckError(f"Binder policy {policy.name}: retain's choices are not forced on canonical states.")
    packed = {kind: _pack((z3.And(*st.constraints), *_edge_terms(st))) for kind, st in steps.items()}
    checked = 0
    for s in edges:
        if isinstance(s.action, Deregister) and (s.action.pid != 0 or s.pre.len == 0):
            raise CrossCheckError(f"{s.action} from {s.pre} is not a canonical deregistration of process 0")
        st = steps[type(s.action)]
        binding = _binding(pre, outcome, pid, s)
        if isinstance(s.action, Deregister):
            binding += [(f, z3.BoolVal(True)) for f in found] + [(a, u64(0)) for a in at]
        value = z3.simplify(z3.substitute(packed[type(s.action)], *binding))
        if not (z3.is_bv_value(value) and value.as_long() == _pack_value((True, *_edge_values(s)))):
            fields = binder_step_fields("", st, s)
            differing = [f for f in fields if not z3.is_true(z3.simplify(z3.substitute(f.formula, *binding)))]
            diffs = "; ".join(f"{f.name}: Python {f.expected}" for f in differing) or "its constraints fail"
            raise CrossCheckError(
                f"Binder policy {policy.name}, {plat.page_size}-byte pages: the explored edge {s.action} from"
                f" {s.pre} is not the Z3 encoding's only outcome ({diffs})."
            )
        checked += 1
    return checked
