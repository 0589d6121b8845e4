"""The explorer's edges held to the Z3 encoding, before any explicit-state verdict uses them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Any

import z3
from z3 import z3util
from z3.z3core import Z3_substitute
from z3.z3types import Ast

from models import binder_z3
from models.allocator import Kind
from models.allocator_z3 import SymOutcome, u64
from models.binder import BinderStep, Deregister, Policy, Register
from models.binder_z3 import SymBinderStep
from models.elements_z3 import IndexElems
from models.machine import BITS, Platform
from models.vec_z3 import SymPlatform, SymVec
from verify.search.fields import CrossCheckError, binder_step_fields, z3_solver
from verify.search.solver import building_in


def _canonical_pre(prefix: str) -> SymVec:
    """The explorer's canonical states: any len, layout and buffer; processes 0, 1, 2, ...; buffer 1; next id 2."""
    fresh = SymVec.fresh(prefix)
    return SymVec(fresh.len, fresh.layout_len, replace(fresh.buf, id=u64(1)), IndexElems(), u64(2))


def _binding_values(s: BinderStep) -> tuple[int | bool, ...]:
    """An edge's inputs: its canonical pre-state, the allocator's outcome and the process."""
    b = s.pre.buf
    return (s.pre.len, s.pre.layout_len, b is not None, b is not None and b.kind is Kind.VMALLOC,
            0 if b is None else b.requested, 0 if b is None else b.physical,
            s.action.outcome.kmalloc_ok, s.action.outcome.vmalloc_ok, s.action.pid)


def _binding(pre: SymVec, outcome: Any, pid: Any, s: BinderStep) -> list[tuple[Any, Any]]:
    names = (pre.len, pre.layout_len, pre.buf.live, pre.buf.vmalloc, pre.buf.requested, pre.buf.physical,
             outcome.kmalloc_ok, outcome.vmalloc_ok, pid)
    return [(name, z3.BoolVal(v) if isinstance(v, bool) else u64(v))
            for name, v in zip(names, _binding_values(s), strict=True)]


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


class _Steps:
    """binder_z3's registration and deregistration over a symbolic canonical pre-state, packed for the edge check.

    `retain` holds a deregistration's free choices (found, at), each set as the explorer's canonical
    deregistration forces it (process 0, found at index 0).
    """

    def __init__(self, plat: Platform, policy: Policy) -> None:
        sp = SymPlatform(plat)
        self.pre = _canonical_pre("edge")
        self.outcome = SymOutcome.fresh("edge.outcome")
        self.pid = z3.BitVec("edge.pid", BITS)
        self.steps = {
            Register: binder_z3.register(sp, self.pre, self.pid, self.outcome, "edge", policy),
            Deregister: binder_z3.deregister(sp, policy, self.pre, self.pid, self.outcome, "edge"),
        }
        dereg = self.steps[Deregister]
        choices = {str(v): v for v in z3util.get_vars(z3.And(dereg.constraints)) if ".retain." in str(v)}
        # One retain per path of a deregistration read from source (verify/source/steps.py), each with its choices.
        self.found = [v for name, v in choices.items() if ".found!" in name]
        self.at = [v for name, v in choices.items() if ".at!" in name]
        self.retain = [(f, z3.BoolVal(True)) for f in self.found] + [(a, u64(0)) for a in self.at]
        self.packed = {kind: _pack((z3.And(*st.constraints), *_edge_terms(st))) for kind, st in self.steps.items()}

    def choices_forced(self) -> bool:
        """On a canonical state the constraints force retain's choices (one solver query)."""
        forced = z3_solver(self.steps[Deregister].constraints)
        forced.add(z3.UGE(self.pre.len, 1), self.pid == 0, z3.Not(z3.And(*self.found, *(a == 0 for a in self.at))))
        return forced.check() == z3.unsat

    def binding(self, s: BinderStep) -> list[tuple[Any, Any]]:
        found = _binding(self.pre, self.outcome, self.pid, s)
        return found + self.retain if isinstance(s.action, Deregister) else found


class _Open:
    """binder_z3's steps with the rule's decision left open: a Boolean `shrink` and a usize `target` in place
    of the policy's trigger and target, and `rule_inputs` the (len, capacity) of the list retain leaves, on
    which any policy's rule is applied (binder_z3.deregister applies it once)."""

    def __init__(self, plat: Platform, faults: frozenset[str]) -> None:
        self.shrink, self.target = z3.Bool("edge.rule.shrink"), z3.BitVec("edge.rule.target", BITS)
        applied: list[tuple[Any, Any]] = []

        def trigger(n: Any, cap: Any) -> Any:
            applied.append((n, cap))
            return self.shrink

        self.steps = _Steps(plat, Policy("rule", "open", lambda n, cap: False, lambda n, cap: 0, trigger,
                                         lambda n, cap: self.target, faults))
        assert len(applied) == 1, "binder_z3.deregister applies the rule once"
        self.rule_inputs = _pack(applied[0])


class _Shared:
    """What the check learns on the open steps (_Open) of one platform and set of seeded faults, as plain
    values. The open steps live in a Z3 context of their own, built once for every policy: each check
    starts a fresh default context (verify.search.solver.fresh_context), which would build them again.

    Any policy's step is the open one with its trigger and target terms substituted for `shrink` and
    `target`; once those are constants on an edge's inputs, the policy's step there is the open one's under
    the constants. So `packed` keeps the open step's packed fields by (operation, inputs, decision), and
    policies that decide alike on an edge share its simplification.
    """

    def __init__(self, plat: Platform, faults: frozenset[str]) -> None:
        self._context = z3.Context()
        with building_in(self._context):
            self._open = _Open(plat, faults)
            self.forced = self._open.steps.choices_forced()
        self.rule_inputs: dict[tuple[Any, ...], tuple[int, int] | None] = {}
        self.packed: dict[tuple[Any, ...], int | None] = {}

    def inputs(self, s: BinderStep) -> tuple[int, int] | None:
        """The (len, capacity) the rule is applied to on a deregistration edge, if constant there."""
        key = _binding_values(s)
        if key not in self.rule_inputs:
            o = self._open
            with building_in(self._context):
                value = z3.simplify(_substituted(o.rule_inputs, [*o.steps.binding(s)]))
                self.rule_inputs[key] = divmod(value.as_long(), 1 << BITS) if z3.is_bv_value(value) else None
        return self.rule_inputs[key]

    def value(self, s: BinderStep, decision: tuple[bool, int] | None) -> int | None:
        """The open step's packed fields on the edge's inputs under `decision` (None on a registration)."""
        key = (type(s.action), _binding_values(s), decision)
        if key not in self.packed:
            o = self._open
            with building_in(self._context):
                extra = [] if decision is None else [(o.shrink, z3.BoolVal(decision[0])),
                                                     (o.target, u64(decision[1]))]
                value = z3.simplify(_substituted(o.steps.packed[type(s.action)], [*o.steps.binding(s), *extra]))
                self.packed[key] = value.as_long() if z3.is_bv_value(value) else None
        return self.packed[key]


def _substituted(term: Any, pairs: list[tuple[Any, Any]]) -> Any:
    """z3.substitute(term, *pairs), asked of Z3 directly.

    z3.substitute first compares the sorts of every pair in Python, which took
    two thirds of an edge's check; Z3 compares them again itself, and raises
    on a mismatch. Terms of another context go through z3.substitute, which refuses them.
    """
    ctx = term.ctx
    if any(source.ctx is not ctx or target.ctx is not ctx for source, target in pairs):
        return z3.substitute(term, *pairs)
    sources, targets = (Ast * len(pairs))(), (Ast * len(pairs))()
    for i, (source, target) in enumerate(pairs):
        sources[i], targets[i] = source.as_ast(), target.as_ast()
    return z3.ExprRef(Z3_substitute(ctx.ref(), term.as_ast(), len(pairs), sources, targets), ctx)


@cache
def _shared(plat: Platform, faults: frozenset[str]) -> _Shared:
    return _Shared(plat, faults)


class _Rule:
    """A policy's Z3 trigger and target on constant (len, capacity), each pair evaluated once."""

    def __init__(self, policy: Policy) -> None:
        n, cap = z3.BitVec("edge.rule.len", BITS), z3.BitVec("edge.rule.cap", BITS)
        self.n, self.cap = n, cap
        self.packed = _pack((policy.trigger_z3(n, cap), policy.target_z3(n, cap)))
        self.decided: dict[tuple[int, int], tuple[bool, int] | None] = {}

    def decision(self, inputs: tuple[int, int]) -> tuple[bool, int] | None:
        if inputs not in self.decided:
            value = z3.simplify(_substituted(self.packed, [(self.n, u64(inputs[0])), (self.cap, u64(inputs[1]))]))
            found = divmod(value.as_long(), 1 << BITS) if z3.is_bv_value(value) else None
            self.decided[inputs] = None if found is None else (bool(found[0]), found[1])
        return self.decided[inputs]


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

    A policy's edges are checked on the steps with the rule's decision left open (_Shared): the policy's
    own trigger and target are evaluated on what each deregistration applies them to, and the open step
    under that decision is simplified once for every policy that reaches it. An edge that does not match there is
    checked again on the policy's own step, whose verdict stands (and names the fields that differ).
    """
    if policy.source is not None:
        return _check_on_own_steps(plat, policy, edges)
    shared = _shared(plat, policy.faults)
    own = None if shared.forced else _forced(plat, policy)
    rule = _Rule(policy)
    checked = 0
    for s in edges:
        _canonical_edge(s)
        value = None
        if isinstance(s.action, Register):
            value = shared.value(s, None)
        elif (inputs := shared.inputs(s)) is not None and (decision := rule.decision(inputs)) is not None:
            value = shared.value(s, decision)
        if value is None or value != _pack_value((True, *_edge_values(s))):
            own = own or _forced(plat, policy)
            _check_edge(plat, policy, own, s)
        checked += 1
    return checked


def _check_on_own_steps(plat: Platform, policy: Policy, edges: Iterable[BinderStep]) -> int:
    steps = _forced(plat, policy)
    checked = 0
    for s in edges:
        _canonical_edge(s)
        _check_edge(plat, policy, steps, s)
        checked += 1
    return checked


def _forced(plat: Platform, policy: Policy) -> _Steps:
    steps = _Steps(plat, policy)
    if not steps.choices_forced():
        raise CrossCheckError(f"Binder policy {policy.name}: retain's choices are not forced on canonical states.")
    return steps


def _canonical_edge(s: BinderStep) -> None:
    if isinstance(s.action, Deregister) and (s.action.pid != 0 or s.pre.len == 0):
        raise CrossCheckError(f"{s.action} from {s.pre} is not a canonical deregistration of process 0")


def _check_edge(plat: Platform, policy: Policy, steps: _Steps, s: BinderStep) -> None:
    binding = steps.binding(s)
    value = z3.simplify(_substituted(steps.packed[type(s.action)], [*binding]))
    if not (z3.is_bv_value(value) and value.as_long() == _pack_value((True, *_edge_values(s)))):
        fields = binder_step_fields("", steps.steps[type(s.action)], s)
        differing = [f for f in fields if not z3.is_true(z3.simplify(z3.substitute(f.formula, *binding)))]
        diffs = "; ".join(f"{f.name}: Python {f.expected}" for f in differing) or "its constraints fail"
        raise CrossCheckError(
            f"Binder policy {policy.name}, {plat.page_size}-byte pages: the explored edge {s.action} from"
            f" {s.pre} is not the Z3 encoding's only outcome ({diffs})."
        )
