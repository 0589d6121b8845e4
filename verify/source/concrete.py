"""The concrete domain: Python integers over the reference allocator (models/allocator.py).

It replays the source on one input: every branch is decided by the values, so
the walk takes the one path the kernel would take. Arithmetic is usize: a
wrap-around is noted as a bug (the kernel builds Rust with overflow checks,
where it panics) and the walk goes on with the wrapped value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models import allocator as kv
from models import vec
from models.allocator import Allocation, Fn, Kind, Outcome, Recorder
from models.machine import ISIZE_MAX, USIZE_MAX, Platform, div_ceil, wrap
from models.vec import Reserve, ShrinkTo, Step, VecState
from verify.source.interpreter import Fallible, Interpreter, Layout, Ptr, Token
from verify.source.locate import Function


class ConcreteDomain:
    def __init__(self, plat: Platform, outcome: Outcome, next_id: int) -> None:
        self.plat = plat
        self.outcome = outcome
        self.rec = Recorder(next_id)

    def const(self, n: int) -> int:
        return n

    def arith(self, op: str, a: int, b: int) -> int:
        fits, value = self.checked(op, a, b)
        if not fits:
            self.rec.overflow = True
        return value

    def checked(self, op: str, a: int, b: int) -> tuple[bool, int]:
        if op in ("/", "%") and b == 0:
            return False, 0  # a division by zero panics
        exact = {"+": a + b, "-": a - b, "*": a * b, "/": a // max(b, 1), "%": a % max(b, 1)}[op]
        return 0 <= exact <= USIZE_MAX, wrap(exact)

    def compare(self, op: str, a: int, b: int) -> bool:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]

    def logic(self, op: str, a: bool, b: bool) -> bool:
        return (a and b) if op == "&&" else (a or b)

    def negate(self, a: bool) -> bool:
        return not a

    def select(self, cond: bool, then: Any, other: Any) -> Any:
        return then if cond else other

    def div_ceil(self, a: int, b: int) -> int:
        if b == 0:
            self.rec.overflow = True
            return 0
        return div_ceil(a, b)

    def decide(self, cond: bool) -> bool:
        return bool(cond)

    def elem_size(self) -> int:
        return self.plat.elem_size

    def page_size(self) -> int:
        return self.plat.page_size

    def capacity(self, layout_len: int) -> int:
        return USIZE_MAX if self.plat.elem_size == 0 else layout_len

    def layout_fits(self, n: int) -> bool:
        return n * self.plat.elem_size <= ISIZE_MAX

    def layout_bytes(self, n: int) -> int:
        return wrap(n * self.plat.elem_size)

    def is_vmalloc(self, alloc: Allocation | None) -> bool:
        return alloc is not None and alloc.kind is Kind.VMALLOC

    def dangling(self) -> None:
        return None

    def allocator(
        self, fn: Fn, alloc: Allocation | None, new_bytes: int, old_bytes: int
    ) -> tuple[bool, Allocation | None]:
        return kv.realloc(self.plat, fn, alloc, new_bytes, old_bytes, self.outcome, self.rec)

    def copy(self, src: Allocation | None, dst: Allocation | None, nbytes: int) -> None:
        if src is not None and dst is not None:
            self.rec.copy(src, dst, nbytes)


def transition(fn: Function, plat: Platform, pre: VecState, action: ShrinkTo | Reserve) -> tuple[Step, list[int]]:
    """The source function on one input: the step it takes (in the model's terms) and the lines it ran, in order.

    `fn` is `shrink_to(min_capacity, flags)` or `reserve(additional, flags)`: its argument is the action's.
    """
    domain = ConcreteDomain(plat, action.outcome, pre.next_id)
    fields: dict[str, Any] = {"len": pre.len, "layout": Layout(pre.layout_len), "ptr": Ptr(pre.buf)}
    run = Interpreter(fn, domain, fields)
    argument = action.min_capacity if isinstance(action, ShrinkTo) else action.additional
    result = run.run([argument, Token("flags")])
    ok = isinstance(result, Fallible) and bool(result.ok)
    buf = fields["ptr"].alloc
    # The elements are what the buffer now behind the pointer holds: the model's memory rule.
    elems = vec._carried(pre, buf, domain.rec, plat)
    post = replace(pre, len=fields["len"], layout_len=fields["layout"].len, buf=buf, elems=elems,
                   next_id=domain.rec.next_id)
    return Step(pre, action, post, ok, domain.rec.effects(), domain.rec.overflow), list(dict.fromkeys(run.lines))
