"""Semantic diff: two versions of a function proved equivalent, or each kind of changed behaviour.

kvec.rs's shrink_to and reserve, and binder's register_process and
deregister_process (binder.py's execution, over a list of 8-byte elements).

Both versions are executed symbolically over the same pre-state, argument and
allocator outcome (symbolic.explore). A kind of behaviour is a pair of paths,
one through each version, named by the source lines each runs. For each pair,
Z3 is asked for an input that takes both and makes them differ in any aspect
conformance.py compares; a SAT answer is minimised and replayed on the
concrete source back end for both versions, and reported only if the two
really differ. No such input for any pair and size: PROVED equivalent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from models import binder_z3
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, BinderAction, Deregister, Register
from models.machine import BITS, Platform
from models.vec import Reserve, ShrinkTo, Step, VecState
from models.vec_z3 import SymPlatform, type_invariant
from verify.check.engine import ReplayError, _outcome_from_model, _state_from_model, canonical_pre
from verify.search.sequences import state_from_model
from verify.search.solver import Answer, Solving, minimal_model, solve
from verify.source import concrete, symbolic
from verify.source.binder import REGISTER, SourceStep, SymSourceStep, concrete_step, symbolic_paths
from verify.source.conformance import ELEMENT_SIZES, Operation, _same_alloc, aspects, differing
from verify.source.locate import Function


@dataclass(frozen=True)
class Change:
    """One kind of changed behaviour: a replayed input, and what each version does on it."""

    elem_size: int
    page_size: int
    pre: VecState
    action: ShrinkTo | Reserve
    old: Step
    new: Step
    old_lines: tuple[int, ...]
    new_lines: tuple[int, ...]

    def differing(self) -> list[str]:
        return differing(self.old, self.new)


@dataclass
class FunctionDiff:
    """The outcome for one function: no `changes` and no `unknown` means PROVED equivalent."""

    operation: Operation
    old: Function
    new: Function
    sizes: tuple[int, ...]
    changes: list[Change] = field(default_factory=list)
    unknown: str = ""
    seconds: float = 0.0


def diff(
    op: Operation,
    old: Function,
    new: Function,
    sizes: tuple[int, ...] = ELEMENT_SIZES,
    page_size: int = 4096,
    timeout_ms: int = 60_000,
) -> FunctionDiff:
    """Compare the two versions of `op`, size by size; one change per pair of paths, at the first size it shows."""
    start = time.perf_counter()
    result = FunctionDiff(op, old, new, sizes)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for size in sizes:
        plat = Platform(elem_size=size, page_size=page_size)
        sp = SymPlatform(plat)
        pre = canonical_pre("pre")
        argument = z3.BitVec(op.argument, BITS)
        outcome = SymOutcome.fresh("outcome")
        old_paths = symbolic.explore(old, sp, pre, argument, outcome)
        new_paths = symbolic.explore(new, sp, pre, argument, outcome)
        for before in old_paths:
            for after in new_paths:
                if (before.lines, after.lines) in seen:
                    continue
                agree = z3.And(*(a for _, a in aspects(before.step, after.step)))
                query = [type_invariant(sp, pre), before.condition, after.condition, z3.Not(agree)]
                solved = solve(query, Solving(timeout_ms))
                if solved.answer is Answer.UNKNOWN:
                    result.unknown = f"T of {size} bytes: {solved.reason or 'the solver gave up'}"
                    result.seconds = time.perf_counter() - start
                    return result
                if solved.answer is Answer.UNSAT:
                    continue
                seen.add((before.lines, after.lines))
                objectives = [pre.layout_len, pre.len, argument, pre.buf.physical, pre.buf.vmalloc,
                              z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok)]
                m = minimal_model(query, objectives, Solving(timeout_ms)) or solved.model
                pre_py = _state_from_model(m, pre)
                action = op.action(int(m.eval(argument, model_completion=True).as_long()),
                                   _outcome_from_model(m, outcome))
                result.changes.append(replay(old, new, plat, pre_py, action))
    result.seconds = time.perf_counter() - start
    return result


def replay(old: Function, new: Function, plat: Platform, pre: VecState, action: ShrinkTo | Reserve) -> Change:
    """Run the input on both versions concretely; a solver answer that does not replay is an internal error."""
    broken = pre.invariant_violations(plat)
    if broken:
        raise ReplayError(f"diff counterexample's pre-state breaks {broken}")
    before, old_lines = concrete.transition(old, plat, pre, action)
    after, new_lines = concrete.transition(new, plat, pre, action)
    if not differing(before, after):
        raise ReplayError("the solver's difference between the two versions does not replay concretely")
    return Change(plat.elem_size, plat.page_size, pre, action, before, after, tuple(old_lines), tuple(new_lines))


# --- binder's context.rs -------------------------------------------------------


@dataclass(frozen=True)
class BinderChange:
    """One kind of changed behaviour of a binder operation: a replayed input, and what each version does."""

    old: SourceStep
    new: SourceStep

    def differing(self) -> list[str]:
        return binder_differing(self.old, self.new)


@dataclass
class BinderFunctionDiff:
    """The outcome for register_process or deregister_process: no `changes`, no `unknown`: PROVED equivalent."""

    name: str
    old: Function
    new: Function
    changes: list[BinderChange] = field(default_factory=list)
    unknown: str = ""
    seconds: float = 0.0


def diff_binder(
    name: str, old: Function, new: Function, page_size: int = 4096, timeout_ms: int = 60_000
) -> BinderFunctionDiff:
    """Compare two versions of a binder operation, path pair by path pair, as `diff` does kvec.rs's."""
    start = time.perf_counter()
    result = BinderFunctionDiff(name, old, new)
    sp = SymPlatform(Platform(elem_size=ELEM_SIZE, page_size=page_size))
    pre = binder_z3.any_state("pre")
    pid = z3.BitVec("pid", BITS)
    outcome = SymOutcome.fresh("outcome")
    for before in symbolic_paths(old, sp, pre, pid, outcome, "old"):
        for after in symbolic_paths(new, sp, pre, pid, outcome, "new"):
            agree = z3.And(*(a for _, a in binder_aspects(before.step, after.step)))
            query = [type_invariant(sp, pre), *before.constraints, *after.constraints,
                     before.condition, after.condition, z3.Not(agree)]
            solved = solve(query, Solving(timeout_ms))
            if solved.answer is Answer.UNKNOWN:
                result.unknown = solved.reason or "the solver gave up"
                break
            if solved.answer is Answer.UNSAT:
                continue
            objectives = [pre.layout_len, pre.len, pid, pre.buf.physical, pre.buf.vmalloc,
                          z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok), pre.buf.id, pre.next_id]
            m = minimal_model(query, objectives, Solving(timeout_ms)) or solved.model
            process = int(m.eval(pid, model_completion=True).as_long())
            operation = _outcome_from_model(m, outcome)
            action: BinderAction = Register(process, operation) if name == REGISTER else Deregister(process, operation)
            result.changes.append(replay_binder(old, new, sp.plat, state_from_model(m, pre), action))
        if result.unknown:
            break
    result.seconds = time.perf_counter() - start
    return result


def replay_binder(old: Function, new: Function, plat: Platform, pre: VecState, action: BinderAction) -> BinderChange:
    broken = pre.invariant_violations(plat)
    if broken:
        raise ReplayError(f"diff counterexample's pre-state breaks {broken}")
    change = BinderChange(concrete_step(old, plat, pre, action), concrete_step(new, plat, pre, action))
    if not change.differing():
        raise ReplayError("the solver's difference between the two versions does not replay concretely")
    return change


def binder_differing(a: SourceStep, b: SourceStep) -> list[str]:
    found = []
    if a.ok != b.ok:
        found.append("result")
    for name in ("len", "layout_len", "buf", "next_id"):
        if getattr(a.post, name) != getattr(b.post, name):
            found.append(f"post-state {name}")
    if a.post.elems.prefix(a.post.len) != b.post.elems.prefix(b.post.len):
        found.append("elements")
    if (a.shrink_target is None) != (b.shrink_target is None):
        found.append("shrink_to called")
    elif a.shrink_target != b.shrink_target:
        found.append("shrink_to target")
    if a.overflow != b.overflow:
        found.append("wrap-around")
    return found


def binder_aspects(a: SymSourceStep, b: SymSourceStep) -> list[tuple[str, z3.BoolRef]]:
    """The aspects binder_differing compares, as Z3 agreements (the elements at one free index)."""
    i = z3.BitVec("elements.index", BITS)
    return [
        ("result", a.ok == b.ok),
        ("wrap-around", a.overflow == b.overflow),
        ("post-state len", a.post.len == b.post.len),
        ("post-state layout_len", a.post.layout_len == b.post.layout_len),
        ("post-state buf", _same_alloc(a.post.buf, b.post.buf)),
        ("post-state next_id", a.post.next_id == b.post.next_id),
        ("shrink_to called", a.shrunk == b.shrunk),
        ("shrink_to target", z3.Implies(z3.And(a.shrunk, b.shrunk), a.shrink_target == b.shrink_target)),
        ("elements", z3.Implies(z3.ULT(i, a.post.len), a.post.elems[i] == b.post.elems[i])),
    ]
