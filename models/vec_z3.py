"""Z3 encoding of `Vec<T, KVmalloc>`, v6: the counterpart of vec.py, branch for branch.

Each Python `return` becomes an exit guarded by the conditions that lead to it;
`Exits.result` folds the disjoint exits into one If-chain. The element size is
a 64-bit term: a constant for a fixed T, or a variable constrained to a range.
Elements are a function from index to identity (elements_z3.py), built without
`lambda` terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import z3

from models import allocator_z3 as kv
from models.allocator import Allocation, Fn, Kind, Outcome
from models.allocator_z3 import BV, SymAlloc, SymEffects, SymOutcome, SymRecorder, ite, u64
from models.elements import Elements
from models.elements_z3 import ArrayElems, RunElems, SymElems
from models.faults import DecisionPoints, Override
from models.machine import BITS, ISIZE_MAX, USIZE_MAX, Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Truncate, VecState


@dataclass(frozen=True)
class SymVec:
    len: Any
    layout_len: Any
    buf: SymAlloc
    elems: SymElems  # index -> identity
    next_id: Any

    @staticmethod
    def fresh(prefix: str, tracks_huge: bool = False) -> SymVec:
        return SymVec(
            z3.BitVec(f"{prefix}.len", BITS),
            z3.BitVec(f"{prefix}.layout_len", BITS),
            SymAlloc.fresh(f"{prefix}.buf", tracks_huge),
            ArrayElems.fresh(f"{prefix}.elems"),
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


def _garbage(name: str) -> SymElems:
    """Contents of memory nobody wrote: any identities at all."""
    return ArrayElems.fresh(name)


def _carried(sp: SymPlatform, old: SymVec, new_buf: SymAlloc, rec: SymRecorder) -> SymElems:
    """The elements as they stand in `new_buf`: the counterpart of vec._carried."""
    unmoved = z3.Or(z3.Not(old.buf.live), z3.And(new_buf.live, new_buf.id == old.buf.id), old.len == 0)
    into_new = z3.And(rec.copy_made, new_buf.live, rec.copy_dst == new_buf.id)
    copied_elems = sp.over_size(rec.copy_nbytes)
    copied = z3.If(into_new, z3.If(z3.ULT(copied_elems, old.len), copied_elems, old.len), u64(0))
    garbage = rec.fresh("garbage", _garbage)
    return old.elems.chosen(unmoved, old.elems.copied(copied, garbage))


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
        shrink = generic_shrink_to if sp.plat.code.generic else shrink_to
        ok, post = shrink(sp, pre, action.min_capacity, action.outcome, rec, faults)
    elif isinstance(action, SymReserve):
        ok, post = reserve(sp, pre, action.additional, action.outcome, rec)
    elif isinstance(action, SymPush):
        ok, post = push(sp, pre, action.identity, action.outcome, rec, faults)
    elif isinstance(action, SymTruncate):
        ok, post = z3.BoolVal(True), ite(z3.ULT(action.len, pre.len), dataclasses.replace(pre, len=action.len), pre)
    elif isinstance(action, SymRetain):
        ok = z3.BoolVal(True)
        post, constraints = retain(pre, action.drop, rec, faults)
    else:
        raise TypeError(f"not an action: {action!r}")
    post = dataclasses.replace(post, next_id=rec.next_id)
    return SymStep(pre, post, ok, rec.effects(), rec.overflow, constraints)


# The decision points of push and retain and the seeded faults that override
# them: the counterparts of vec.PUSH_OVERRIDES and vec.RETAIN_OVERRIDES.
PUSH_OVERRIDES: dict[str, tuple[str, Override]] = {
    "vec-in-binder-failed-push-drops-last": (
        "state after failed reserve",
        lambda sp, kernel, pre, ok, post: _dropped_last(pre, ok, kernel()),
    ),
    "vec-in-binder-push-stale-request": (
        "buffer after reserve",
        lambda sp, kernel, pre, ok, post: _stale_request(sp, pre, ok, kernel()),
    ),
}

RETAIN_OVERRIDES: dict[str, tuple[str, Override]] = {
    "vec-in-binder-retain-drops-next": (
        "removal",
        lambda rec, kernel, pre, at: z3.If(z3.ULT(at + 1, pre.len), u64(2), u64(1)),
    ),
}


def push(
    sp: SymPlatform, pre: SymVec, identity: BV, outcome: SymOutcome, rec: SymRecorder, faults: frozenset[str]
) -> tuple[Any, SymVec]:
    """`Vec::push`: the counterpart of vec.push.

    Both points see the whole result (`post`): an Err from reserve leaves `pre`
    unchanged, an Ok writes the element at len.
    """
    at = DecisionPoints(faults, PUSH_OVERRIDES, sp)
    ok, grown = reserve(sp, pre, u64(1), outcome, rec)
    pushed = dataclasses.replace(grown, len=grown.len + 1, elems=grown.elems.store(grown.len, identity))
    post = ite(ok, pushed, grown)
    post = at("state after failed reserve", lambda pre, ok, post: post, pre, ok, post)
    return ok, at("buffer after reserve", lambda pre, ok, post: post, pre, ok, post)


def _dropped_last(pre: SymVec, ok: Any, post: SymVec) -> SymVec:
    """After an Err from reserve, pre without its last element (when it has one)."""
    dropped = dataclasses.replace(pre, len=pre.len - 1)
    return ite(z3.And(z3.Not(ok), z3.UGT(pre.len, 0)), dropped, post)


def _stale_request(sp: SymPlatform, pre: SymVec, ok: Any, post: SymVec) -> SymVec:
    """A grown buffer recorded as if it had been allocated with pre's old size."""
    grew = z3.And(ok, post.layout_len != pre.layout_len, post.buf.live)
    stale = dataclasses.replace(post.buf, requested=sp.layout_bytes(pre))
    return ite(grew, dataclasses.replace(post, buf=stale), post)


def retain(pre: SymVec, drop: BV, rec: SymRecorder, faults: frozenset[str]) -> tuple[SymVec, tuple[Any, ...]]:
    """Remove the element `drop` (identities in a vector are distinct): the counterpart of vec.retain.

    The index where it stands is a fresh variable pinned down by constraints.
    """
    found = rec.fresh("retain.found", z3.Bool)
    at = rec.fresh("retain.at", lambda name: z3.BitVec(name, BITS))
    i = z3.BitVec("i", BITS)
    constraints = (
        z3.Implies(found, z3.And(z3.ULT(at, pre.len), pre.elems[at] == drop)),
        z3.Implies(z3.Not(found), z3.ForAll([i], z3.Implies(z3.ULT(i, pre.len), pre.elems[i] != drop))),
    )
    gone = DecisionPoints(faults, RETAIN_OVERRIDES, rec)("removal", lambda pre, at: u64(1), pre, at)
    removed = dataclasses.replace(pre, len=pre.len - gone, elems=pre.elems.removed(at, gone))
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


# shrink_to's decision points and the seeded faults that override them: the
# counterpart of vec.SHRINK_OVERRIDES, the same faults on the same points. A point
# whose check a fault removes is None here: the encoding then adds no exit for it.
# Each override gets (rec, the value without the fault, *the point's inputs).
SHRINK_OVERRIDES: dict[str, tuple[str, Override]] = {
    "always-noop": ("runs", lambda rec, kernel: False),
    "target-ignores-len": ("target", lambda rec, kernel, len_, min_capacity: min_capacity),
    "target-ignores-min-capacity": ("target", lambda rec, kernel, len_, min_capacity: len_),
    "target-min": ("target", lambda rec, kernel, len_, min_capacity: _umin(len_, min_capacity)),
    "target-doubled-unchecked": ("target", lambda rec, kernel, len_, min_capacity: _doubled(rec, kernel())),
    "noop-check-dropped": ("nothing to shrink", lambda rec, kernel, capacity, target: None),
    "noop-path-reallocs": ("realloc with nothing to shrink", lambda rec, kernel, buf: buf.live),
    "zst-check-dropped": ("zero-sized T", lambda rec, kernel, size: None),
    "vmalloc-test-inverted": ("not vmalloc", lambda rec, kernel, buf: z3.Or(z3.Not(buf.live), buf.vmalloc)),
    "kmalloc-deep-copy": ("not vmalloc", lambda rec, kernel, buf: z3.BoolVal(False)),
    "pages-floor": ("pages", lambda rec, kernel, nbytes, page_size: z3.UDiv(nbytes, u64(page_size))),
    "page-rule-off-by-one": ("no page freed", lambda rec, kernel, current, target: z3.ULT(current, target)),
    "target-zero-skipped": ("free at target 0", lambda rec, kernel: False),
    "layout-updated-on-err": (
        "state after failed alloc",
        lambda rec, kernel, v, target: dataclasses.replace(v, layout_len=target),
    ),
    "copy-one-short": ("copied len", lambda rec, kernel, len_: z3.If(len_ == 0, len_, len_ - 1)),
    "copy-one-too-long": ("copied len", lambda rec, kernel, len_: len_ + 1),
    "free-with-new-layout": ("free layout", lambda rec, kernel, old_bytes, new_bytes: new_bytes),
    # A later override of one point wins over an earlier one that ignores the value before it.
    "old-buffer-leaked": ("copy then free", lambda rec, kernel, copy, free: (copy,)),
    "free-before-copy": ("copy then free", lambda rec, kernel, copy, free: (free, copy)),
}


def _umax(a: BV, b: BV) -> BV:
    return z3.If(z3.UGE(a, b), a, b)


def _umin(a: BV, b: BV) -> BV:
    return z3.If(z3.ULE(a, b), a, b)


def _not_vmalloc(buf: SymAlloc) -> Any:
    """!is_vmalloc_addr(ptr); a dangling pointer is no vmalloc address either."""
    is_kmalloc = z3.Not(buf.vmalloc)
    return z3.Or(z3.Not(buf.live), is_kmalloc)


def _doubled(rec: SymRecorder, target: BV) -> BV:
    return rec.mul(z3.BoolVal(True), target, u64(2))


def shrink_to(
    sp: SymPlatform,
    v: SymVec,
    min_capacity: BV,
    outcome: SymOutcome,
    rec: SymRecorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[Any, SymVec]:
    """`Vec<T, KVmalloc>::shrink_to(min_capacity)`: the counterpart of vec.shrink_to, step for step.

    Each early return of the kernel is an exit guarded by the conditions that
    reach it; `g` is the guard of the path still running.
    """
    at = DecisionPoints(faults, SHRINK_OVERRIDES, rec)
    size = sp.elem_size
    page = sp.plat.page_size
    exits = Exits()
    true = z3.BoolVal(True)
    if not at("runs", lambda: True):
        exits.add(true, true, v)
        return exits.result()
    g: Any = true

    # target_cap = max(len, min_capacity).
    target = at("target", _umax, v.len, min_capacity)

    # Capacity already at or below the target: Ok, nothing changes.
    at_or_below = at("nothing to shrink", lambda capacity, target: z3.ULE(capacity, target), sp.capacity(v), target)
    if at_or_below is not None:
        realloc_too = at("realloc with nothing to shrink", lambda buf: False, v.buf)
        if realloc_too is not False:
            same = sp.layout_bytes(v)
            kv.realloc(sp.plat, z3.And(at_or_below, realloc_too), Fn.REALLOC, v.buf, same, same, outcome, rec)
        exits.add(at_or_below, true, v)
        g = z3.And(g, z3.Not(at_or_below))
    # A zero-sized T never allocates (its capacity is usize::MAX): Ok, nothing changes.
    zero_sized = at("zero-sized T", lambda size: size == 0, size)
    if zero_sized is not None:
        exits.add(z3.And(g, zero_sized), true, v)
        g = z3.And(g, size != 0)

    new_bytes = _times_size(sp, rec, g, target)
    old_bytes = sp.layout_bytes(v)

    # !is_vmalloc_addr(ptr): a kmalloc buffer goes to KVmalloc::realloc; Err leaves it all unchanged.
    kmalloc_path = at("not vmalloc", _not_vmalloc, v.buf)
    gk = z3.And(g, kmalloc_path)
    ok, buf = kv.realloc(sp.plat, gk, Fn.REALLOC, v.buf, new_bytes, old_bytes, outcome, rec)
    exits.add(z3.And(gk, z3.Not(ok)), z3.BoolVal(False), v)
    reallocated = dataclasses.replace(v, layout_len=target, buf=buf, elems=_carried(sp, v, buf, rec))
    exits.add(gk, true, reallocated)
    g = z3.And(g, z3.Not(kmalloc_path))

    # A vmalloc buffer is replaced only if that frees at least one page.
    current_pages = at("pages", kv.div_ceil, _times_size(sp, rec, g, sp.capacity(v)), page)
    target_pages = at("pages", kv.div_ceil, new_bytes, page)
    no_page_freed = at("no page freed", z3.ULE, current_pages, target_pages)
    exits.add(z3.And(g, no_page_freed), true, v)
    g = z3.And(g, z3.Not(no_page_freed))

    # target_cap == 0: free the buffer with its layout; the vector is left dangling, with an empty layout.
    zero = z3.And(g, target == 0)
    if at("free at target 0", lambda: True):
        kv.realloc(sp.plat, zero, Fn.FREE, v.buf, u64(0), old_bytes, outcome, rec)
        exits.add(zero, true, dataclasses.replace(v, layout_len=u64(0), buf=SymAlloc.none()))
    else:
        exits.add(zero, true, v)
    g = z3.And(g, target != 0)

    # KVmalloc::alloc a buffer of target_cap elements; Err leaves everything unchanged.
    ok, new = kv.realloc(sp.plat, g, Fn.ALLOC, SymAlloc.none(), new_bytes, u64(0), outcome, rec)
    failed = z3.Or(z3.Not(ok), z3.Not(new.live))
    exits.add(z3.And(g, failed), z3.BoolVal(False), at("state after failed alloc", lambda v, target: v, v, target))
    g = z3.And(g, z3.Not(failed))
    # Copy the len elements across, then free the old buffer with its own layout.
    copied_len = at("copied len", lambda len_: len_, v.len)
    free_bytes = at("free layout", lambda old_bytes, new_bytes: old_bytes, old_bytes, new_bytes)

    def copy_elements() -> None:
        rec.copy(g, v.buf, new, sp.times_size(copied_len))

    def free_old_buffer() -> None:
        kv.realloc(sp.plat, g, Fn.FREE, v.buf, u64(0), free_bytes, outcome, rec)

    for do in at("copy then free", lambda copy, free: (copy, free), copy_elements, free_old_buffer):
        do()
    exits.add(g, true, dataclasses.replace(v, layout_len=target, buf=new, elems=_carried(sp, v, new, rec)))
    return exits.result()


# The generic shrink_to's decision points: the counterpart of vec.GENERIC_SHRINK_OVERRIDES.
GENERIC_SHRINK_OVERRIDES: dict[str, tuple[str, Override]] = {
    "generic-noop-check-dropped": ("nothing to shrink", lambda rec, kernel, capacity, target: None),
    "generic-layout-kept": ("layout after realloc", lambda rec, kernel, old_len, target: old_len),
}


def generic_shrink_to(
    sp: SymPlatform,
    v: SymVec,
    min_capacity: BV,
    outcome: SymOutcome,
    rec: SymRecorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[Any, SymVec]:
    """The generic `Vec<T, A>::shrink_to`: the counterpart of vec.generic_shrink_to, step for step."""
    at = DecisionPoints(faults, GENERIC_SHRINK_OVERRIDES, rec)
    size = sp.elem_size
    exits = Exits()
    true = z3.BoolVal(True)
    g: Any = true
    # target_cap = max(len, min_capacity); capacity already at or below it: Ok, nothing changes.
    target = _umax(v.len, min_capacity)
    at_or_below = at("nothing to shrink", lambda capacity, target: z3.ULE(capacity, target), sp.capacity(v), target)
    if at_or_below is not None:
        exits.add(at_or_below, true, v)
        g = z3.And(g, z3.Not(at_or_below))
    # A zero-sized T never allocates: Ok, nothing changes.
    exits.add(z3.And(g, size == 0), true, v)
    g = z3.And(g, size != 0)
    # A::realloc(ptr, layout of target_cap elements, current layout); Err leaves everything unchanged.
    new_bytes = _times_size(sp, rec, g, target)
    ok, buf = kv.realloc(sp.plat, g, Fn.REALLOC, v.buf, new_bytes, sp.layout_bytes(v), outcome, rec)
    exits.add(z3.And(g, z3.Not(ok)), z3.BoolVal(False), v)
    layout_len = at("layout after realloc", lambda old_len, target: target, v.layout_len, target)
    exits.add(g, true, dataclasses.replace(v, layout_len=layout_len, buf=buf, elems=_carried(sp, v, buf, rec)))
    return exits.result()


# --- lifting reference-model values into Z3 constants --------------------------


def lift_elems(elems: Elements, name: str = "lifted") -> SymElems:
    """These identities at indices 0..len-1 (garbage slots and those beyond len stay free)."""
    return RunElems(elems, _garbage(f"{name}.garbage"))


def lift_alloc(a: Allocation | None) -> SymAlloc:
    if a is None:
        return SymAlloc.none()
    huge = z3.BoolVal(True) if a.huge else False  # a term only where a model tracks it
    return SymAlloc(
        z3.BoolVal(True), u64(a.id), z3.BoolVal(a.kind is Kind.VMALLOC), u64(a.requested), u64(a.physical), huge
    )


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
