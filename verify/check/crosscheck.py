"""Cross-check one concrete step of the Python reference model against the Z3 encoding.

The proofs run on the Z3 encoding (models/vec_z3.py) and counterexamples replay
on the Python model (models/vec.py), so the two must describe the same
transition relation. For one concrete step we lift the pre-state and action into
Z3 and ask two questions: (a) does the encoding accept the Python next state
(satisfiable together with "post equals the Python post"), and (b) is that the
only next state it allows (unsatisfiable together with the negation)? Together
they say the encoding computes exactly what the Python model computes.
"""

from __future__ import annotations

from typing import Any

import z3

from models import binder_z3
from models.allocator import MAX_CALLS, Effects
from models.allocator_z3 import SymEffects, fn_code, u64
from models.binder import BinderAction, BinderStep, Deregister, Policy, Register, binder_step
from models.elements import GARBAGE, Elements
from models.machine import BITS, Platform
from models.vec import Step, VecState
from models.vec_z3 import (
    SymPlatform,
    SymStep,
    SymVec,
    lift_action,
    lift_outcome,
    lift_state,
    type_invariant,
)
from models.vec_z3 import step as sym_step
from properties.base import StepProperty
from properties.binder import JUDGED_PREDICATES, ONE_STEP_PREDICATES
from verify.search.fields import CrossCheckError, Field, alloc_fields, binder_step_fields, same_value, z3_solver
from verify.search.sequences import unroll

# Runs of at most this many identities are compared index by index (so a
# disagreement names the index); longer runs with one quantified formula.
ELEMENT_LIMIT = 64


def _element_fields(sym: Any, elems: Elements, length: int) -> list[Field]:
    """Identities at every index < length, skipping slots the Python model marks GARBAGE."""
    fields = []
    offset = 0
    for first, count in elems.prefix(length).runs:
        if first == GARBAGE:
            pass
        elif count <= ELEMENT_LIMIT:
            fields += [same_value(f"elems[{offset + k}]", sym[u64(offset + k)], first + k) for k in range(count)]
        else:
            i = z3.BitVec("i", BITS)
            inside = z3.And(z3.UGE(i, offset), z3.ULT(i, offset + count))
            formula = z3.ForAll([i], z3.Implies(inside, sym[i] == u64(first - offset) + i))
            fields.append(Field(f"elems[{offset}..{offset + count - 1}]", formula, None, f"{first}.."))
        offset += count
    return fields


def _effects_fields(sym: SymEffects, fx: Effects) -> list[Field]:
    fields = []
    for k in range(MAX_CALLS):
        call = fx.calls[k] if k < len(fx.calls) else None
        fn = None if call is None else call.fn
        fields.append(Field(f"effects.calls[{k}].fn", sym.call_fn[k] == fn_code(fn), sym.call_fn[k], str(int(fn or 0))))
        fields.append(same_value(f"effects.calls[{k}].new_bytes", sym.call_new[k], call.new_bytes if call else 0))
        fields.append(same_value(f"effects.calls[{k}].old_bytes", sym.call_old[k], call.old_bytes if call else 0))
    fields.append(same_value("effects.alloc_made", sym.alloc_made, fx.allocated is not None))
    if fx.allocated is not None:
        fields += alloc_fields("effects.allocated", sym.allocated, fx.allocated)
    fields.append(same_value("effects.copy_made", sym.copy_made, fx.copied is not None))
    if fx.copied is not None:
        fields.append(same_value("effects.copy_src", sym.copy_src, fx.copied.src))
        fields.append(same_value("effects.copy_dst", sym.copy_dst, fx.copied.dst))
        fields.append(same_value("effects.copy_nbytes", sym.copy_nbytes, fx.copied.nbytes))
    fields.append(same_value("effects.free_made", sym.free_made, fx.freed is not None))
    if fx.freed is not None:
        fields.append(same_value("effects.free_id", sym.free_id, fx.freed.alloc_id))
        fields.append(same_value("effects.free_nbytes", sym.free_nbytes, fx.freed.nbytes))
        fields.append(same_value("effects.copy_before_free", sym.copy_before_free, fx.copy_before_free))
    return fields


def step_fields(st: SymStep, s: Step) -> list[Field]:
    """Every field of the Python step's outcome, as an equation over the Z3 step's terms."""
    post: SymVec = st.post
    py: VecState = s.post
    fields = [
        same_value("ok", st.ok, s.ok),
        same_value("post.len", post.len, py.len),
        same_value("post.layout_len", post.layout_len, py.layout_len),
        same_value("post.buf.live", post.buf.live, py.buf is not None),
    ]
    if py.buf is not None:
        fields += alloc_fields("post.buf", post.buf, py.buf)
    fields.append(same_value("post.next_id", post.next_id, py.next_id))
    fields.append(same_value("overflow", st.overflow, s.overflow))
    fields += _effects_fields(st.effects, s.effects)
    fields += [
        Field(f"post.{f.name}", f.formula, f.term, f.expected) for f in _element_fields(post.elems, py.elems, py.len)
    ]
    return fields


def _show(model: z3.ModelRef, term: Any) -> str:
    if term is None:
        return "something else"
    value = model.eval(term, model_completion=True)
    return str(value.as_long()) if z3.is_bv_value(value) else str(value)


def check_transition(plat: Platform, s: Step, faults: frozenset[str] = frozenset()) -> None:
    """Raise CrossCheckError unless the Z3 encoding's only next state for (s.pre, s.action) is s's outcome.

    It must (a) accept the Python outcome and (b) allow no other.

    Meant for pre-states that satisfy the type invariant and hold no GARBAGE
    slot (every state the unmutated model reaches). From others the encodings
    may legitimately part: Z3 reads an uncopied slot as an arbitrary identity
    (retain may drop it), and `capacity - len` wraps in Z3 when len > capacity.
    """
    pre = lift_state(s.pre)
    st = sym_step(SymPlatform(plat), pre, lift_action(s.action, pre), faults)
    fields = step_fields(st, s)
    where = (
        f"For T of {plat.elem_size} bytes, {plat.page_size}-byte pages"
        f"{', faults ' + ', '.join(sorted(faults)) if faults else ''}, pre-state {s.pre} and action {s.action}"
    )
    _accepts(st.constraints, fields, where)
    _only_outcome(st.constraints, fields, where)


def _accepts(constraints: Any, fields: list[Field], where: str) -> None:
    """Raise CrossCheckError, naming the fields in conflict, unless the encoding allows the `fields` outcome."""
    accepts = z3_solver(constraints)
    for index, f in enumerate(fields):
        accepts.assert_and_track(f.formula, z3.Bool(f"field!{index}"))
    answer = accepts.check()
    if answer == z3.unknown:
        raise CrossCheckError(
            f"{where}: Z3 could not decide whether it accepts the Python outcome ({accepts.reason_unknown()})."
        )
    if answer == z3.unsat:
        core = {str(b) for b in accepts.unsat_core()}
        blamed = [f for index, f in enumerate(fields) if f"field!{index}" in core]
        alone = z3_solver(constraints)
        if alone.check() != z3.sat:
            raise CrossCheckError(
                f"{where}: the Z3 encoding admits no next state at all (its transition relation is unsatisfiable)."
            )
        model = alone.model()
        diffs = "; ".join(f"{f.name}: Python {f.expected}, Z3 {_show(model, f.term)}" for f in blamed)
        raise CrossCheckError(
            f"{where}: the Z3 encoding rejects the Python outcome; the fields in conflict are {diffs}."
        )


def _only_outcome(constraints: Any, fields: list[Field], where: str) -> None:
    """Raise CrossCheckError if the encoding allows any next state other than the one `fields` describe."""
    others = z3_solver(constraints)
    others.add(z3.Not(z3.And([f.formula for f in fields])))
    answer = others.check()
    if answer == z3.unknown:
        raise CrossCheckError(
            f"{where}: Z3 could not decide whether another outcome is possible ({others.reason_unknown()})."
        )
    if answer == z3.sat:
        model = others.model()
        differing = [f for f in fields if not z3.is_true(model.eval(f.formula, model_completion=True))]
        diffs = "; ".join(f"{f.name}: Python {f.expected}, Z3 {_show(model, f.term)}" for f in differing)
        raise CrossCheckError(
            f"{where}: the Z3 encoding also allows a different outcome, where {diffs or 'a quantified field differs'}."
        )


def check_properties(plat: Platform, props: tuple[StepProperty, ...], s: Step) -> None:
    """Raise CrossCheckError unless each Z3 predicate is forced to its Python verdict on this step.

    The step is a call the properties are about: shrink_to, or reserve (or push, reserve(1) and a write).
    """
    sp = SymPlatform(plat)
    pre = lift_state(s.pre)
    action = lift_action(s.action, pre)
    st = sym_step(sp, pre, action)  # built once: the step's encoding is most of the cost
    for prop in props:
        expected = prop.py(plat, s)
        solver = z3_solver(st.constraints)
        solver.add(prop.z3(sp, st, action) != z3.BoolVal(expected))
        answer = solver.check()
        where = f"{prop.id} for T of {plat.elem_size} bytes, pre-state {s.pre} and action {s.action}"
        if answer == z3.unknown:
            raise CrossCheckError(f"{where}: Z3 could not decide the predicate ({solver.reason_unknown()}).")
        if answer == z3.sat:
            raise CrossCheckError(
                f"{where}: the Python judge says {expected}, the Z3 predicate can be {not expected}."
            )


def check_binder_transition(plat: Platform, policy: Policy, s: BinderStep) -> None:
    """Raise CrossCheckError unless binder_z3's only outcome for (s.pre, s.action) is the Python binder step's."""
    sp = SymPlatform(plat)
    pre = lift_state(s.pre)
    outcome = lift_outcome(s.action.outcome)
    pid = u64(s.action.pid)
    if isinstance(s.action, Register):
        st = binder_z3.register(sp, pre, pid, outcome, "b", policy)
    else:
        st = binder_z3.deregister(sp, policy, pre, pid, outcome, "b")
    fields = binder_step_fields("", st, s)
    fields += [
        Field(f"post.{f.name}", f.formula, f.term, f.expected)
        for f in _element_fields(st.post.elems, s.post.elems, s.post.len)
    ]
    where = f"Binder policy {policy.name}, {plat.page_size}-byte pages, pre-state {s.pre} and action {s.action}"
    _accepts(st.constraints, fields, where)
    _only_outcome(st.constraints, fields, where)
    for p in ONE_STEP_PREDICATES:
        if isinstance(s.action, p.operation):
            _same_verdict(st.constraints, p.at(st), p.judge(plat, [s], 0), f"{where}: {p.name}")


def check_invariants(plat: Platform, v: VecState) -> None:
    """Raise CrossCheckError unless Z3's type invariants and the Python model's agree on whether `v` has them."""
    broken = bool(v.invariant_violations(plat))
    _same_verdict((), z3.Not(type_invariant(SymPlatform(plat), lift_state(v))), broken, f"{v}: broken invariants")


def _same_verdict(constraints: Any, violation: Any, expected: bool, what: str) -> None:
    """Raise CrossCheckError unless `violation` has a witness exactly when the Python judge says `expected`."""
    solver = z3_solver(constraints)
    solver.add(violation)
    answer = solver.check()
    if answer == z3.unknown:
        raise CrossCheckError(f"{what}: Z3 could not decide ({solver.reason_unknown()}).")
    if answer != (z3.sat if expected else z3.unsat):
        raise CrossCheckError(f"{what}: the Python judge says {expected}, the Z3 predicate says {not expected}.")


def check_unrolling(plat: Platform, policy: Policy, pre: VecState, actions: tuple[BinderAction, ...]) -> None:
    """Raise CrossCheckError unless BMC's unrolling, from `pre` through `actions`, is the Python model's run.

    The unrolling (verify/search/sequences.py) is the encoding BMC and k-induction
    prove things about: it registers process 1000 + i at operation i and
    deregisters the last process. So the Python run it is compared with makes
    the same choices, with the kinds and allocator outcomes of `actions`. Each
    operation's outcome must be the only one the unrolling allows, and every
    predicate BMC checks must be forced to its Python judge's verdict there.
    """
    sp = SymPlatform(plat)
    u = unroll(sp, policy, len(actions), lift_state(pre))
    choices: list[Any] = []
    state, steps = pre, []
    for i, action in enumerate(actions):
        outcome = lift_outcome(action.outcome)
        choices += [
            u.is_register[i] == isinstance(action, Register),
            u.outcomes[i].kmalloc_ok == outcome.kmalloc_ok,
            u.outcomes[i].vmalloc_ok == outcome.vmalloc_ok,
        ]
        same: BinderAction = (
            Register(1000 + i, action.outcome)
            if isinstance(action, Register)
            else Deregister(state.elems.at(state.len - 1), action.outcome)
        )
        steps.append(binder_step(plat, policy, state, same))
        state = steps[-1].post
    fields: list[Field] = []
    for i, (sym, s) in enumerate(zip(u.steps, steps, strict=True)):
        fields += binder_step_fields(f"op{i}.", sym, s)
        fields += [
            same_value(f"op{i}: {p.name}", p.at(sp, u, i), p.judge(plat, steps[: i + 1], 0)) for p in JUDGED_PREDICATES
        ]
    where = (
        f"Binder policy {policy.name}, {plat.page_size}-byte pages, BMC's unrolling from {pre}"
        f" through {', '.join(str(a) for a in actions)}"
    )
    constraints = (*u.constraints, *choices)
    _accepts(constraints, fields, where)
    _only_outcome(constraints, fields, where)
