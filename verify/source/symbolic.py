"""The symbolic domain: Z3 terms over the allocator encoding (models/allocator_z3.py).

Each walk follows one path, its branches answered by a decision list; `explore`
walks every path (depth first, a path per run) and folds them into one
transition, each path's effects guarded by its path condition. The paths of a
function are disjoint, so the fold is an If-chain, as vec_z3's `Exits`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import z3

from models import allocator_z3 as kv
from models import vec_z3
from models.allocator import Fn
from models.allocator_z3 import SymAlloc, SymOutcome, SymRecorder, ite, u64
from models.machine import ISIZE_MAX, USIZE_MAX
from models.vec_z3 import SymPlatform, SymStep, SymVec
from verify.source.interpreter import Fallible, Interpreter, Layout, Ptr, Token
from verify.source.locate import Function, Unsupported

MAX_PATHS = 256
T = TypeVar("T")


class Decisions:
    """The branch answers of one walk: a given prefix, then True for every new branch."""

    def __init__(self, prefix: list[bool]) -> None:
        self.prefix = prefix
        self.trail: list[bool] = []

    def next(self) -> bool:
        answer = self.prefix[len(self.trail)] if len(self.trail) < len(self.prefix) else True
        self.trail.append(answer)
        return answer

    def following(self) -> list[bool] | None:
        """The prefix of the next path to walk, depth first; None when every path has been walked."""
        trail = list(self.trail)
        while trail and not trail[-1]:
            trail.pop()
        if not trail:
            return None
        trail[-1] = False
        return trail


def _bool(b: Any) -> Any:
    return z3.BoolVal(b) if isinstance(b, bool) else b


class SymbolicDomain:
    def __init__(self, sp: SymPlatform, outcome: SymOutcome, next_id: Any, decisions: Decisions) -> None:
        self.sp = sp
        self.outcome = outcome
        self.decisions = decisions
        self.path: list[Any] = []
        # One recorder per path: the path condition guards all of its effects at the end.
        self.rec = SymRecorder(next_id, "src")

    def const(self, n: int) -> Any:
        return u64(n)

    def arith(self, op: str, a: Any, b: Any) -> Any:
        fits, value = self.checked(op, a, b)
        self.rec.note_overflow(True, fits)
        return value

    def checked(self, op: str, a: Any, b: Any) -> tuple[Any, Any]:
        if op == "+":
            return z3.BVAddNoOverflow(a, b, False), a + b
        if op == "-":
            return z3.UGE(a, b), a - b
        if op == "*":
            return z3.BVMulNoOverflow(a, b, False), a * b
        if op == "/":
            return b != 0, z3.UDiv(a, b)
        return b != 0, z3.URem(a, b)

    def compare(self, op: str, a: Any, b: Any) -> Any:
        return {
            "<": z3.ULT, "<=": z3.ULE, ">": z3.UGT, ">=": z3.UGE, "==": lambda x, y: x == y, "!=": lambda x, y: x != y,
        }[op](a, b)

    def logic(self, op: str, a: Any, b: Any) -> Any:
        return z3.And(_bool(a), _bool(b)) if op == "&&" else z3.Or(_bool(a), _bool(b))

    def negate(self, a: Any) -> Any:
        return (not a) if isinstance(a, bool) else z3.Not(a)

    def select(self, cond: Any, then: Any, other: Any) -> Any:
        return ite(_bool(cond), then, other)

    def div_ceil(self, a: Any, b: Any) -> Any:
        self.rec.note_overflow(True, b != 0)
        return z3.UDiv(a, b) + z3.If(z3.URem(a, b) == 0, u64(0), u64(1))

    def decide(self, cond: Any) -> bool:
        if isinstance(cond, bool):
            return cond
        simple = z3.simplify(cond)
        if z3.is_true(simple) or z3.is_false(simple):
            return bool(z3.is_true(simple))
        answer = self.decisions.next()
        self.path.append(cond if answer else z3.Not(cond))
        return answer

    def elem_size(self) -> Any:
        return self.sp.elem_size

    def page_size(self) -> Any:
        return u64(self.sp.plat.page_size)

    def capacity(self, layout_len: Any) -> Any:
        return z3.If(self.sp.elem_size == 0, u64(USIZE_MAX), layout_len)

    def layout_fits(self, n: Any) -> Any:
        fits = z3.And(self.sp.times_size_fits(n), z3.ULE(self.sp.times_size(n), ISIZE_MAX))
        return z3.Or(self.sp.elem_size == 0, fits)

    def layout_bytes(self, n: Any) -> Any:
        return self.sp.times_size(n)

    def is_vmalloc(self, alloc: SymAlloc) -> Any:
        return z3.And(alloc.live, alloc.vmalloc)

    def dangling(self) -> SymAlloc:
        return SymAlloc.none()

    def allocator(self, fn: Fn, alloc: SymAlloc, new_bytes: Any, old_bytes: Any) -> tuple[Any, SymAlloc]:
        return kv.realloc(self.sp.plat, z3.BoolVal(True), fn, alloc, new_bytes, old_bytes, self.outcome, self.rec)

    def copy(self, src: SymAlloc, dst: SymAlloc, nbytes: Any) -> None:
        self.rec.copy(z3.And(src.live, dst.live), src, dst, nbytes)


@dataclass(frozen=True)
class Path:
    condition: Any
    step: SymStep
    lines: tuple[int, ...]


def transition(fn: Function, sp: SymPlatform, pre: SymVec, argument: Any, outcome: SymOutcome) -> SymStep:
    """The source function (`shrink_to` or `reserve`) as one transition over every path, as vec_z3.step's."""
    paths = explore(fn, sp, pre, argument, outcome)
    *rest, last = paths
    folded = last.step
    for path in reversed(rest):
        folded = ite(path.condition, path.step, folded)
    return folded


def every_path(fn: Function, run_path: Callable[[Decisions], T]) -> list[T]:
    """`run_path` once per path through the function: each run replays a prefix of decisions, then
    takes the next untried branch; more than MAX_PATHS paths is an unsupported function."""
    results: list[T] = []
    prefix: list[bool] | None = []
    while prefix is not None:
        if len(results) == MAX_PATHS:
            raise Unsupported(fn.path, fn.node, f"more than {MAX_PATHS} paths through the function")
        decisions = Decisions(prefix)
        results.append(run_path(decisions))
        prefix = decisions.following()
    return results


def explore(fn: Function, sp: SymPlatform, pre: SymVec, argument: Any, outcome: SymOutcome) -> list[Path]:
    """Every path through the function, each with its condition, its step and the lines it ran."""

    def run_path(decisions: Decisions) -> Path:
        domain = SymbolicDomain(sp, outcome, pre.next_id, decisions)
        fields: dict[str, Any] = {"len": pre.len, "layout": Layout(pre.layout_len), "ptr": Ptr(pre.buf)}
        run = Interpreter(fn, domain, fields)
        result = run.run([argument, Token("flags")])
        ok = _bool(result.ok) if isinstance(result, Fallible) else z3.BoolVal(False)
        buf = fields["ptr"].alloc
        post = dataclasses.replace(
            pre, len=fields["len"], layout_len=fields["layout"].len, buf=buf,
            elems=vec_z3._carried(sp, pre, buf, domain.rec), next_id=domain.rec.next_id,
        )
        step = SymStep(pre, post, ok, domain.rec.effects(), domain.rec.overflow)
        return Path(z3.And(*domain.path), step, tuple(dict.fromkeys(run.lines)))

    return every_path(fn, run_path)
