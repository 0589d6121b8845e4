"""Semantic diff: two versions of kvec.rs's functions proved equivalent, or each kind of changed behaviour.

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

from models.allocator_z3 import SymOutcome
from models.machine import BITS, Platform
from models.vec import Reserve, ShrinkTo, Step, VecState
from models.vec_z3 import SymPlatform, type_invariant
from verify.engine import ReplayError, _outcome_from_model, _state_from_model, canonical_pre
from verify.solver import Answer, minimal_model, solve
from verify.source import concrete, symbolic
from verify.source.conformance import ELEMENT_SIZES, Operation, aspects, differing
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
                solved = solve(query, timeout_ms)
                if solved.answer is Answer.UNKNOWN:
                    result.unknown = f"T of {size} bytes: {solved.reason or 'the solver gave up'}"
                    result.seconds = time.perf_counter() - start
                    return result
                if solved.answer is Answer.UNSAT:
                    continue
                seen.add((before.lines, after.lines))
                objectives = [pre.layout_len, pre.len, argument, pre.buf.physical, pre.buf.vmalloc,
                              z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok)]
                m = minimal_model(query, objectives, timeout_ms) or solved.model
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
