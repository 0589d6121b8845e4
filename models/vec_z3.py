"""Z3 encoding of `Vec<T, KVmalloc>`, v6: the counterpart of vec.py, branch for branch.

Each Python `return` becomes an exit guarded by the conditions that lead to it;
`Exits.result` folds the disjoint exits into one If-chain. The element size is
a 64-bit term: a constant for a fixed T, or a variable constrained to a range.
Elements are an array from index to identity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import z3

from models import allocator_z3 as kv
from models.allocator import Allocation, Fn, Kind, Outcome
from models.allocator_z3 import BV, SymAlloc, SymEffects, SymOutcome, SymRecorder, ite, u64
from models.elements import GARBAGE, Elements
from models.machine import BITS, ISIZE_MAX, USIZE_MAX, Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Truncate, VecState


@dataclass(frozen=True)
class SymVec:
    len: Any
    layout_len: Any
    buf: SymAlloc
    elems: Any  # Array(index -> identity)
    next_id: Any

    @staticmethod
    def fresh(prefix: str) -> SymVec:
        return SymVec(
            z3.BitVec(f"{prefix}.len", BITS),
            z3.BitVec(f"{prefix}.layout_len", BITS),
            SymAlloc.fresh(f"{prefix}.buf"),
            z3.Array(f"{prefix}.elems", z3.BitVecSort(BITS), z3.BitVecSort(BITS)),
            z3.BitVec(f"{prefix}.next_id", BITS),
        )


@dataclass(frozen=True)
class SymPlatform:
    """The page size (always concrete) and the element size: a constant, or 2^log2 for a symbolic log2.

    Every product or quotient by the element size goes through these methods,
    so that a symbolic power-of-two size is a shift, which the solver handles.
    """

    plat: Platform  # page size and the allocator constants; its elem_size is unused when log2 is set
    log2: Any = None

    @property
    def elem_size(self) -> Any:
        if self.log2 is None:
            return u64(self.plat.elem_size)
        return u64(1) << self.log2

    def times_size(self, x: BV) -> BV:
        return x << self.log2 if self.log2 is not None else x * self.plat.elem_size

    def times_size_fits(self, x: BV) -> Any:
        """x * size does not wrap around."""
        if self.log2 is not None:
            return z3.LShR(x, u64(BITS) - self.log2) == 0
        return z3.BVMulNoOverflow(x, self.elem_size, False)

    def times_size_wide(self, x: BV) -> Any:
        """x * size exactly, in 128 bits."""
        if self.log2 is not None:
            return z3.ZeroExt(BITS, x) << z3.ZeroExt(BITS, self.log2)
        return z3.ZeroExt(BITS, x) * self.plat.elem_size

    def over_size(self, nbytes: BV) -> BV:
        """nbytes / size (for a nonzero size)."""
        if self.log2 is not None:
            return z3.LShR(nbytes, self.log2)
        return z3.UDiv(nbytes, max(self.plat.elem_size, 1))

    def capacity(self, v: SymVec) -> BV:
        return z3.If(self.elem_size == 0, u64(USIZE_MAX), v.layout_len)

    def layout_bytes(self, v: SymVec) -> BV:
        return self.times_size(v.layout_len)


def type_invariant(sp: SymPlatform, v: SymVec, ghost: bool = True) -> Any:
    """The type invariants of kvec.rs and of the allocation: the counterpart of VecState.invariant_violations.

    `ghost` adds the model's own bookkeeping (allocation ids below the next id),
    which is not a kernel invariant and wraps after 2^64 allocations.
    """
    size = sp.elem_size
    ghost_clause = z3.Implies(v.buf.live, z3.ULT(v.buf.id, v.next_id)) if ghost else z3.BoolVal(True)
    return z3.And(
        z3.ULE(v.len, sp.capacity(v)),
        sp.times_size_fits(v.layout_len),
        z3.ULE(sp.layout_bytes(v), ISIZE_MAX),
        z3.Implies(size == 0, v.layout_len == 0),
        v.buf.live == (sp.layout_bytes(v) != 0),
        z3.Implies(v.buf.live, v.buf.requested == sp.layout_bytes(v)),
        kv.allocation_well_formed(sp.plat, v.buf),
        ghost_clause,
    )


# --- actions ------------------------------------------------------------------


@dataclass(frozen=True)
class SymShrinkTo:
    min_capacity: Any
    outcome: SymOutcome


@dataclass(frozen=True)
class SymReserve:
    additional: Any
    outcome: SymOutcome


@dataclass(frozen=True)
class SymPush:
    identity: Any
    outcome: SymOutcome


@dataclass(frozen=True)
class SymTruncate:
    len: Any


@dataclass(frozen=True)
class SymRetain:
    drop: Any


SymAction = SymShrinkTo | SymReserve | SymPush | SymTruncate | SymRetain


@dataclass(frozen=True)
class SymStep:
    pre: SymVec
    post: SymVec
    ok: Any
    effects: SymEffects
    overflow: Any
    # Side conditions the transition relation adds (retain's choice of index).
    constraints: tuple[Any, ...] = ()


class Exits:
    """The return points of one encoded function, each with its guard."""

    def __init__(self) -> None:
        self.exits: list[tuple[Any, Any, SymVec]] = []

    def add(self, guard: Any, ok: Any, post: SymVec) -> None:
        self.exits.append((guard, ok, post))

    def result(self) -> tuple[Any, SymVec]:
        (_, ok, post) = self.exits[-1]
        for guard, exit_ok, exit_post in reversed(self.exits[:-1]):
            ok = z3.If(guard, exit_ok, ok)
            post = ite(guard, exit_post, post)
        return ok, post


def _garbage(name: str) -> Any:
    """Contents of memory nobody wrote: an unconstrained array."""
    return z3.Array(name, z3.BitVecSort(BITS), z3.BitVecSort(BITS))


def _carried(sp: SymPlatform, old: SymVec, new_buf: SymAlloc, rec: SymRecorder) -> Any:
    """The elements as they stand in `new_buf`: the counterpart of vec._carried."""
    unmoved = z3.Or(z3.Not(old.buf.live), z3.And(new_buf.live, new_buf.id == old.buf.id), old.len == 0)
    into_new = z3.And(rec.copy_made, new_buf.live, rec.copy_dst == new_buf.id)
    copied_elems = sp.over_size(rec.copy_nbytes)
    copied = z3.If(into_new, z3.If(z3.ULT(copied_elems, old.len), copied_elems, old.len), u64(0))
    garbage = rec.fresh("garbage", _garbage)
    # Z3 builds a lambda by walking its whole body, and in a long unrolling
    # `copied` and the old elements are large terms: building this lambda
    # directly was most of a BMC check's time. A lambda over placeholders walks
    # only the small body; substituting the terms in leaves them as they are.
    i = z3.BitVec("i", BITS)
    n = z3.BitVec("placeholder.copied", BITS)
    src = z3.Array("placeholder.old", z3.BitVecSort(BITS), z3.BitVecSort(BITS))
    moved = z3.Lambda([i], z3.If(z3.ULT(i, n), src[i], garbage[i]))
    return z3.If(unmoved, old.elems, z3.substitute(moved, (n, copied), (src, old.elems)))


def _times_size(sp: SymPlatform, rec: SymRecorder, g: Any, x: BV) -> BV:
    """x * size as the machine computes it; a wrap-around on an active path is recorded."""
    rec.note_overflow(g, sp.times_size_fits(x))
    return sp.times_size(x)


def step(
    sp: SymPlatform, pre: SymVec, action: SymAction, faults: frozenset[str] = frozenset(), prefix: str = "step"
) -> SymStep:
    """Encode one operation: the counterpart of vec.step. `prefix` names the step's fresh variables."""
    rec = SymRecorder(pre.next_id, prefix, faults)
    constraints: tuple[Any, ...] = ()
    if isinstance(action, SymShrinkTo):
        ok, post = shrink_to(sp, pre, action.min_capacity, action.outcome, rec, faults)
    elif isinstance(action, SymReserve):
        ok, post = reserve(sp, pre, action.additional, action.outcome, rec)
    elif isinstance(action, SymPush):
        ok, grown = reserve(sp, pre, u64(1), action.outcome, rec)
        pushed = dataclasses.replace(grown, len=grown.len + 1, elems=z3.Store(grown.elems, grown.len, action.identity))
        post = _push_faults(sp, pre, ok, ite(ok, pushed, grown), faults)
    elif isinstance(action, SymTruncate):
        ok, post = z3.BoolVal(True), ite(z3.ULT(action.len, pre.len), dataclasses.replace(pre, len=action.len), pre)
    elif isinstance(action, SymRetain):
        ok = z3.BoolVal(True)
        post, constraints = _retain(pre, action.drop, rec)
    else:
        raise TypeError(f"not an action: {action!r}")
    post = dataclasses.replace(post, next_id=rec.next_id)
    return SymStep(pre, post, ok, rec.effects(), rec.overflow, constraints)


def _push_faults(sp: SymPlatform, pre: SymVec, ok: Any, post: SymVec, faults: frozenset[str]) -> SymVec:
    """The seeded push faults (models/faults.py); the counterpart of vec._push_faults."""
    if "vec-in-binder-failed-push-drops-last" in faults:
        dropped = dataclasses.replace(pre, len=pre.len - 1)
        post = ite(z3.And(z3.Not(ok), z3.UGT(pre.len, 0)), dropped, post)
    if "vec-in-binder-push-stale-request" in faults:
        grew = z3.And(ok, post.layout_len != pre.layout_len, post.buf.live)
        stale = dataclasses.replace(post.buf, requested=sp.layout_bytes(pre))
        post = ite(grew, dataclasses.replace(post, buf=stale), post)
    return post


def _retain(pre: SymVec, drop: BV, rec: SymRecorder) -> tuple[SymVec, tuple[Any, ...]]:
    """Remove the element `drop` (identities in a vector are distinct).

    The index where it stands is a fresh variable pinned down by constraints.
    """
    found = rec.fresh("retain.found", z3.Bool)
    at = rec.fresh("retain.at", lambda name: z3.BitVec(name, BITS))
    i = z3.BitVec("i", BITS)
    constraints = (
        z3.Implies(found, z3.And(z3.ULT(at, pre.len), pre.elems[at] == drop)),
        z3.Implies(z3.Not(found), z3.ForAll([i], z3.Implies(z3.ULT(i, pre.len), pre.elems[i] != drop))),
    )
    # A seeded fault also drops the next element, when there is one.
    gone = u64(1)
    if "vec-in-binder-retain-drops-next" in rec.faults:
        gone = z3.If(z3.ULT(at + 1, pre.len), u64(2), u64(1))
    shifted = z3.Lambda([i], z3.If(z3.ULT(i, at), pre.elems[i], pre.elems[i + gone]))
    removed = dataclasses.replace(pre, len=pre.len - gone, elems=shifted)
    return ite(found, removed, pre), constraints


def reserve(sp: SymPlatform, v: SymVec, additional: BV, outcome: SymOutcome, rec: SymRecorder) -> tuple[Any, SymVec]:
    """`Vec::reserve`: the counterpart of vec.reserve."""
    size = sp.elem_size
    exits = Exits()
    g: Any = z3.BoolVal(True)
    cap = sp.capacity(v)
    enough = z3.UGE(cap - v.len, additional)
    exits.add(enough, z3.BoolVal(True), v)
    g = z3.And(g, z3.Not(enough))
    exits.add(z3.And(g, size == 0), z3.BoolVal(False), v)
    g = z3.And(g, size != 0)
    sum_overflows = z3.Not(z3.BVAddNoOverflow(v.len, additional, False))
    exits.add(z3.And(g, sum_overflows), z3.BoolVal(False), v)
    g = z3.And(g, z3.Not(sum_overflows))
    needed = v.len + additional
    new_cap = z3.If(z3.UGE(cap * 2, needed), cap * 2, needed)
    too_big = z3.Or(z3.Not(sp.times_size_fits(new_cap)), z3.UGT(sp.times_size(new_cap), ISIZE_MAX))
    exits.add(z3.And(g, too_big), z3.BoolVal(False), v)
    g = z3.And(g, z3.Not(too_big))
    ok, buf = kv.realloc(sp.plat, g, Fn.REALLOC, v.buf, sp.times_size(new_cap), sp.layout_bytes(v), outcome, rec)
    exits.add(z3.And(g, z3.Not(ok)), z3.BoolVal(False), v)
    grown = dataclasses.replace(v, layout_len=new_cap, buf=buf, elems=_carried(sp, v, buf, rec))
    exits.add(g, z3.BoolVal(True), grown)
    return exits.result()


def shrink_to(
    sp: SymPlatform,
    v: SymVec,
    min_capacity: BV,
    outcome: SymOutcome,
    rec: SymRecorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[Any, SymVec]:
    """`Vec<T, KVmalloc>::shrink_to(min_capacity)`, v6: the counterpart of vec.shrink_to."""
    size = sp.elem_size
    page = sp.plat.page_size
    exits = Exits()
    true = z3.BoolVal(True)
    if "always-noop" in faults:
        exits.add(true, true, v)
        return exits.result()
    g: Any = true
    target = z3.If(z3.UGE(v.len, min_capacity), v.len, min_capacity)
    if "target-ignores-len" in faults:
        target = min_capacity
    if "target-ignores-min-capacity" in faults:
        target = v.len
    if "target-min" in faults:
        target = z3.If(z3.ULE(v.len, min_capacity), v.len, min_capacity)
    if "target-doubled-unchecked" in faults:
        target = rec.mul(g, target, u64(2))

    # Nothing to do when the capacity is already at or below the target.
    if "noop-check-dropped" not in faults:
        at_or_below = z3.ULE(sp.capacity(v), target)
        if "noop-path-reallocs" in faults:
            same = sp.layout_bytes(v)
            kv.realloc(sp.plat, z3.And(at_or_below, v.buf.live), Fn.REALLOC, v.buf, same, same, outcome, rec)
        exits.add(at_or_below, true, v)
        g = z3.And(g, z3.Not(at_or_below))
    # A zero-sized T never allocates; its capacity is usize::MAX.
    if "zst-check-dropped" not in faults:
        exits.add(z3.And(g, size == 0), true, v)
        g = z3.And(g, size != 0)

    new_bytes = _times_size(sp, rec, g, target)
    old_bytes = sp.layout_bytes(v)

    # !is_vmalloc_addr(ptr): delegate to KVmalloc::realloc.
    is_kmalloc = z3.Not(v.buf.vmalloc) if "vmalloc-test-inverted" not in faults else v.buf.vmalloc
    kmalloc_path = z3.Or(z3.Not(v.buf.live), is_kmalloc)
    if "kmalloc-deep-copy" in faults:
        kmalloc_path = z3.BoolVal(False)
    gk = z3.And(g, kmalloc_path)
    ok, buf = kv.realloc(sp.plat, gk, Fn.REALLOC, v.buf, new_bytes, old_bytes, outcome, rec)
    exits.add(z3.And(gk, z3.Not(ok)), z3.BoolVal(False), v)
    reallocated = dataclasses.replace(v, layout_len=target, buf=buf, elems=_carried(sp, v, buf, rec))
    exits.add(gk, true, reallocated)
    g = z3.And(g, z3.Not(kmalloc_path))

    # vmalloc buffer: replace it only if at least one page is freed.
    pages = (lambda n, d: z3.UDiv(n, u64(d))) if "pages-floor" in faults else kv.div_ceil
    current_pages = pages(_times_size(sp, rec, g, sp.capacity(v)), page)
    target_pages = pages(new_bytes, page)
    if "page-rule-off-by-one" in faults:
        no_page_freed = z3.ULT(current_pages, target_pages)
    else:
        no_page_freed = z3.ULE(current_pages, target_pages)
    exits.add(z3.And(g, no_page_freed), true, v)
    g = z3.And(g, z3.Not(no_page_freed))

    # target == 0: free the buffer; the vector becomes empty and dangling.
    zero = z3.And(g, target == 0)
    if "target-zero-skipped" not in faults:
        kv.realloc(sp.plat, zero, Fn.FREE, v.buf, u64(0), old_bytes, outcome, rec)
        exits.add(zero, true, dataclasses.replace(v, layout_len=u64(0), buf=SymAlloc.none()))
    else:
        exits.add(zero, true, v)
    g = z3.And(g, target != 0)

    # Deep copy: alloc the target layout, copy len elements, free the old buffer.
    ok, new = kv.realloc(sp.plat, g, Fn.ALLOC, SymAlloc.none(), new_bytes, u64(0), outcome, rec)
    failed = z3.Or(z3.Not(ok), z3.Not(new.live))
    on_err = dataclasses.replace(v, layout_len=target) if "layout-updated-on-err" in faults else v
    exits.add(z3.And(g, failed), z3.BoolVal(False), on_err)
    g = z3.And(g, z3.Not(failed))
    copied_len = z3.If(v.len == 0, v.len, v.len - 1) if "copy-one-short" in faults else v.len
    if "copy-one-too-long" in faults:
        copied_len = v.len + 1
    free_bytes = new_bytes if "free-with-new-layout" in faults else old_bytes
    if "free-before-copy" in faults:
        kv.realloc(sp.plat, g, Fn.FREE, v.buf, u64(0), free_bytes, outcome, rec)
        rec.copy(g, v.buf, new, sp.times_size(copied_len))
    elif "old-buffer-leaked" in faults:
        rec.copy(g, v.buf, new, sp.times_size(copied_len))
    else:
        rec.copy(g, v.buf, new, sp.times_size(copied_len))
        kv.realloc(sp.plat, g, Fn.FREE, v.buf, u64(0), free_bytes, outcome, rec)
    exits.add(g, true, dataclasses.replace(v, layout_len=target, buf=new, elems=_carried(sp, v, new, rec)))
    return exits.result()


# --- lifting reference-model values into Z3 constants --------------------------


def lift_elems(elems: Elements, name: str = "lifted") -> Any:
    """The array holding these identities at indices 0..len-1 (garbage slots stay free)."""
    i = z3.BitVec("i", BITS)
    body: Any = _garbage(f"{name}.garbage")[i]
    offset = elems.count
    for first, count in reversed(elems.runs):
        offset -= count
        if first != GARBAGE:
            inside = z3.And(z3.UGE(i, offset), z3.ULT(i, offset + count))
            body = z3.If(inside, u64(first - offset) + i, body)
    return z3.Lambda([i], body)


def lift_alloc(a: Allocation | None) -> SymAlloc:
    if a is None:
        return SymAlloc.none()
    return SymAlloc(z3.BoolVal(True), u64(a.id), z3.BoolVal(a.kind is Kind.VMALLOC), u64(a.requested), u64(a.physical))


def lift_state(v: VecState) -> SymVec:
    return SymVec(u64(v.len), u64(v.layout_len), lift_alloc(v.buf), lift_elems(v.elems), u64(v.next_id))


def lift_outcome(o: Outcome) -> SymOutcome:
    return SymOutcome(z3.BoolVal(o.kmalloc_ok), z3.BoolVal(o.vmalloc_ok))


def lift_action(action: Action, pre: SymVec) -> SymAction:
    if isinstance(action, ShrinkTo):
        return SymShrinkTo(u64(action.min_capacity), lift_outcome(action.outcome))
    if isinstance(action, Reserve):
        return SymReserve(u64(action.additional), lift_outcome(action.outcome))
    if isinstance(action, Push):
        return SymPush(u64(action.identity), lift_outcome(action.outcome))
    if isinstance(action, Pop):
        return SymTruncate(z3.If(pre.len == 0, u64(0), pre.len - 1))
    if isinstance(action, Truncate):
        return SymTruncate(u64(action.len))
    if isinstance(action, Clear):
        return SymTruncate(u64(0))
    if isinstance(action, Retain):
        return SymRetain(u64(action.drop))
    raise TypeError(f"not an action: {action!r}")
