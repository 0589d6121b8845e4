"""Conformance: the source's `shrink_to` and `reserve` make the model's transitions, for every input.

For each function and element size, Z3 is asked for a pre-state satisfying the
type invariants, an argument and an allocator outcome where the source's
transition (symbolic.py) and the model's (models/vec_z3.step) differ in the
result, the post-state, the allocator calls (in order), the allocation, the
copy, the free or a wrap-around. UNSAT for every size: PROVED conformant. SAT:
the smallest such input is replayed on the concrete source back end and on the
reference model (models/vec.py), and reported only if the two really differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3

from models import vec, vec_z3
from models.allocator import MAX_CALLS
from models.machine import BITS, Platform
from models.vec import Reserve, ShrinkTo, Step, VecState
from models.vec_z3 import SymOutcome, SymPlatform, SymStep, type_invariant
from verify.check.engine import ReplayError, _outcome_from_model, _state_from_model, canonical_pre
from verify.search.solver import Answer, Solved, Solving, first_not_unsat, minimal_model
from verify.source import concrete, symbolic
from verify.source.locate import KVEC as KVEC  # the functions under check, named where they are found
from verify.source.locate import OPERATIONS as OPERATIONS
from verify.source.locate import RESERVE as RESERVE
from verify.source.locate import SHRINK_TO, Function, Operation, find_method

# The element sizes of the fixed-size Vec models: a zero-sized T, u8, binder's 8 bytes, a 24-byte T.
ELEMENT_SIZES = (0, 1, 8, 24)


@dataclass(frozen=True)
class Difference:
    """A replayed input where the source and the model part ways."""

    elem_size: int
    page_size: int
    pre: VecState
    action: ShrinkTo | Reserve
    source: Step
    model: Step
    lines: tuple[int, ...]

    def differing(self) -> list[str]:
        return differing(self.source, self.model)


@dataclass
class Conformance:
    """The outcome for one function: `difference` None and `unknown` empty means PROVED conformant."""

    operation: Operation
    function: Function
    faults: frozenset[str]
    sizes: tuple[int, ...] = ()
    difference: Difference | None = None
    unknown: str = ""
    seconds: float = 0.0
    proved: list[int] = field(default_factory=list)


def shrink_to_function(path: Path) -> Function:
    return find_method(path, SHRINK_TO.impl, SHRINK_TO.name)


def check_shrink_to(
    fn: Function,
    faults: frozenset[str] = frozenset(),
    sizes: tuple[int, ...] = ELEMENT_SIZES,
    page_size: int = 4096,
    timeout_ms: int = 60_000,
) -> Conformance:
    return check(SHRINK_TO, fn, faults, sizes, page_size, timeout_ms)


def check(
    op: Operation,
    fn: Function,
    faults: frozenset[str] = frozenset(),
    sizes: tuple[int, ...] = ELEMENT_SIZES,
    page_size: int = 4096,
    timeout_ms: int = 60_000,
) -> Conformance:
    """Prove the source function equal to the model's (with `faults` seeded in the model), size by size."""
    start = time.perf_counter()
    result = Conformance(op, fn, faults, sizes)
    for size in sizes:
        plat = Platform(elem_size=size, page_size=page_size)
        sp = SymPlatform(plat)
        pre = canonical_pre("pre")
        argument = z3.BitVec(op.argument, BITS)
        outcome = SymOutcome.fresh("outcome")
        model = vec_z3.step(sp, pre, op.sym_action(argument, outcome), faults)
        source = symbolic.transition(fn, sp, pre, argument, outcome)
        aspect, solved = _first_disagreement([type_invariant(sp, pre)], aspects(source, model), timeout_ms)
        if solved.answer is Answer.UNKNOWN:
            result.unknown = f"T of {size} bytes, {aspect}: {solved.reason or 'the solver gave up'}"
            break
        if solved.answer is Answer.UNSAT:
            result.proved.append(size)
            continue
        query = [type_invariant(sp, pre), z3.Not(dict(aspects(source, model))[aspect])]
        # Smallest buffer first, then the other inputs; allocations that succeed unless failing matters.
        objectives = [pre.layout_len, pre.len, argument, pre.buf.physical, pre.buf.vmalloc,
                      z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok)]
        m = minimal_model(query, objectives, Solving(timeout_ms)) or solved.model
        pre_py = _state_from_model(m, pre)
        action_py = op.action(int(m.eval(argument, model_completion=True).as_long()), _outcome_from_model(m, outcome))
        result.difference = replay(fn, plat, pre_py, action_py, faults)
        break
    result.seconds = time.perf_counter() - start
    return result


def _first_disagreement(setting: list[Any], agreements: list[tuple[str, Any]], timeout_ms: int) -> tuple[str, Solved]:
    """The first aspect the solver finds a disagreement on (or cannot decide); the last UNSAT otherwise.

    One query per aspect: many small queries are decided far faster than their
    disjunction, and all of them UNSAT is the same proof. They share one
    incremental solver that holds the setting, encoded once: several times
    faster than a fresh solver per aspect.
    """
    i, solved = first_not_unsat(setting, [z3.Not(agree) for _, agree in agreements], Solving(timeout_ms))
    return ("", solved) if solved.answer is Answer.UNSAT else (agreements[i][0], solved)


def replay(
    fn: Function, plat: Platform, pre: VecState, action: ShrinkTo | Reserve, faults: frozenset[str]
) -> Difference:
    """Run the input on both concrete sides; a solver answer that does not replay is an internal error."""
    broken = pre.invariant_violations(plat)
    if broken:
        raise ReplayError(f"conformance counterexample's pre-state breaks {broken}")
    source, lines = concrete.transition(fn, plat, pre, action)
    model = vec.step(plat, pre, action, faults)
    if not differing(source, model):
        raise ReplayError("the solver's difference between source and model does not replay concretely")
    return Difference(plat.elem_size, plat.page_size, pre, action, source, model, tuple(lines))


def differing(source: Step, model: Step) -> list[str]:
    """What differs between the two concrete steps, one phrase per aspect."""
    found = []
    if source.ok != model.ok:
        found.append("result")
    for name in ("len", "layout_len", "buf", "next_id"):
        if getattr(source.post, name) != getattr(model.post, name):
            found.append(f"post-state {name}")
    if source.post.elems.prefix(source.post.len) != model.post.elems.prefix(model.post.len):
        found.append("elements")
    for name in ("calls", "allocated", "copied", "freed", "copy_before_free"):
        if getattr(source.effects, name) != getattr(model.effects, name):
            found.append(f"allocator {name}")
    if source.overflow != model.overflow:
        found.append("wrap-around")
    return found


def aspects(src: SymStep, model: SymStep) -> list[tuple[str, Any]]:
    """Each way the two transitions must agree, named.

    The elements are not compared: both sides derive them by the same memory
    rule (vec_z3._carried) from the pre-state, the buffer behind the pointer
    and the copy made, which are compared here. (Comparing them directly would
    also compare two unrelated arrays of garbage.)
    """
    a, b = src.post, model.post
    ea, eb = src.effects, model.effects
    found = [
        ("result", src.ok == model.ok),
        ("wrap-around", src.overflow == model.overflow),
        ("post-state len", a.len == b.len),
        ("post-state layout_len", a.layout_len == b.layout_len),
        ("post-state next_id", a.next_id == b.next_id),
        ("post-state buf", _same_alloc(a.buf, b.buf)),
        ("allocator allocated", z3.And(ea.alloc_made == eb.alloc_made,
                                       z3.Implies(ea.alloc_made, _same_alloc(ea.allocated, eb.allocated)))),
        ("allocator copied", z3.And(ea.copy_made == eb.copy_made, z3.Implies(ea.copy_made, z3.And(
            ea.copy_src == eb.copy_src, ea.copy_dst == eb.copy_dst, ea.copy_nbytes == eb.copy_nbytes)))),
        ("allocator freed", z3.And(ea.free_made == eb.free_made, z3.Implies(ea.free_made, z3.And(
            ea.free_id == eb.free_id, ea.free_nbytes == eb.free_nbytes)))),
        ("allocator copy_before_free",
         z3.Implies(z3.And(ea.copy_made, ea.free_made), ea.copy_before_free == eb.copy_before_free)),
    ]
    for k in range(MAX_CALLS):
        found.append((f"allocator call {k + 1}", z3.And(ea.call_fn[k] == eb.call_fn[k], z3.Implies(
            ea.call_fn[k] != 0, z3.And(ea.call_new[k] == eb.call_new[k], ea.call_old[k] == eb.call_old[k])))))
    return found


def _same_alloc(a: Any, b: Any) -> Any:
    return z3.And(a.live == b.live, z3.Implies(a.live, z3.And(
        a.id == b.id, a.vmalloc == b.vmalloc, a.requested == b.requested, a.physical == b.physical)))
