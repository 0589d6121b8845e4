"""Z3 encoding of KVmalloc and the C allocators, over 64-bit bit-vectors.

The counterpart of allocator.py, function for function. Control flow becomes
path guards: every effect is recorded under the guard of the path that makes
it, and the paths of one step are disjoint, so in any model exactly one path's
effects are visible. All comparisons are unsigned (ULE, ULT, ...), as for usize.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, TypeAlias

import z3
from z3.z3core import Z3_mk_ite

from models.allocator import MAX_CALLS, Fn
from models.elements_z3 import SymElems
from models.faults import DecisionPoints, Override
from models.machine import BITS, INT_MAX, ISIZE_MAX, USIZE_MAX, Platform, kmalloc_size_classes

# z3 ships no type information, so its terms are Any to mypy; the alias names intent.
BV: TypeAlias = Any  # a 64-bit z3.BitVecRef


def u64(value: int) -> BV:
    return z3.BitVecVal(value, BITS)


def fn_code(fn: Fn | None) -> BV:
    return z3.BitVecVal(0 if fn is None else int(fn), 8)


def ite(cond: Any, then: Any, other: Any) -> Any:
    """If-then-else over Z3 terms, element sequences, tuples and dataclasses of them, field by field."""
    if dataclasses.is_dataclass(then) and not isinstance(then, type):
        values = {
            f.name: ite(cond, getattr(then, f.name), getattr(other, f.name)) for f in dataclasses.fields(then)
        }
        return type(then)(**values)
    if isinstance(then, SymElems):
        return then.chosen(cond, other)
    if isinstance(then, tuple):
        return tuple(ite(cond, a, b) for a, b in zip(then, other, strict=True))
    if isinstance(then, (int, str)) and then == other:
        return then
    # Z3 shares equal terms, so one address is one term (what AstRef.eq asks Z3, at ten times the cost).
    if isinstance(then, z3.ExprRef) and isinstance(other, z3.ExprRef) and then.as_ast().value == other.as_ast().value:
        return then
    return term_if(cond, then, other)


def term_if(cond: Any, then: Any, other: Any) -> Any:
    """z3.If(cond, then, other), made by Z3 directly when all three are terms of one context.

    z3.If first coerces its arguments (Python values, sorts, contexts), which
    costs five times the term itself; the encodings make hundreds of thousands
    of these. Z3 still checks the sorts, and raises on a mismatch.
    """
    if isinstance(cond, z3.BoolRef) and isinstance(then, z3.ExprRef) and isinstance(other, z3.ExprRef) and (
        cond.ctx is then.ctx is other.ctx
    ):
        ctx = then.ctx
        made = Z3_mk_ite(ctx.ref(), cond.as_ast(), then.as_ast(), other.as_ast())
        if isinstance(then, z3.BitVecRef):
            return z3.BitVecRef(made, ctx)
        if isinstance(then, z3.BoolRef):
            return z3.BoolRef(made, ctx)
        return z3.If(cond, then, other)  # another sort: made again through the API, which picks its class
    return z3.If(cond, then, other)


def div_ceil(value: BV, divisor: int) -> BV:
    """`usize::div_ceil` without the overflow of (value + divisor - 1) / divisor."""
    d = u64(divisor)
    return z3.UDiv(value, d) + term_if(z3.URem(value, d) == 0, u64(0), u64(1))


@dataclass(frozen=True)
class SymAlloc:
    """allocator.Allocation, or no allocation when `live` is false."""

    live: Any
    id: Any
    vmalloc: Any
    requested: Any
    physical: Any
    huge: Any = False  # allocator.Allocation.huge: a Bool term where the model tracks it, else False

    @staticmethod
    def fresh(prefix: str, tracks_huge: bool = False) -> SymAlloc:
        return SymAlloc(
            z3.Bool(f"{prefix}.live"),
            z3.BitVec(f"{prefix}.id", BITS),
            z3.Bool(f"{prefix}.vmalloc"),
            z3.BitVec(f"{prefix}.requested", BITS),
            z3.BitVec(f"{prefix}.physical", BITS),
            z3.Bool(f"{prefix}.huge") if tracks_huge else False,
        )

    @staticmethod
    def none() -> SymAlloc:
        return SymAlloc(z3.BoolVal(False), u64(0), z3.BoolVal(False), u64(0), u64(0))


@dataclass(frozen=True)
class SymOutcome:
    kmalloc_ok: Any
    vmalloc_ok: Any

    @staticmethod
    def fresh(prefix: str) -> SymOutcome:
        return SymOutcome(z3.Bool(f"{prefix}.kmalloc_ok"), z3.Bool(f"{prefix}.vmalloc_ok"))


@dataclass(frozen=True)
class SymEffects:
    """allocator.Effects with fixed slots; a call slot with fn 0 is empty."""

    call_fn: tuple[Any, ...]
    call_new: tuple[Any, ...]
    call_old: tuple[Any, ...]
    alloc_made: Any
    allocated: SymAlloc
    copy_made: Any
    copy_src: Any
    copy_dst: Any
    copy_nbytes: Any
    free_made: Any
    free_id: Any
    free_nbytes: Any
    copy_before_free: Any

    def ncalls(self) -> Any:
        # A bit-vector count, not an Int sum: the queries stay in bit-vector logic,
        # which the second solver (--confirm) decides.
        return z3.Sum([z3.If(fn == fn_code(None), z3.BitVecVal(0, 8), z3.BitVecVal(1, 8)) for fn in self.call_fn])


class SymRecorder:
    """Collects a step's effects under path guards; the counterpart of allocator.Recorder."""

    def __init__(self, next_id: BV, prefix: str = "step", faults: frozenset[str] = frozenset()) -> None:
        self.next_id = next_id
        self.faults = faults  # seeded allocator faults (models/faults.py)
        self.prefix = prefix
        self.fresh_count = 0
        self.ncalls: BV = z3.BitVecVal(0, 8)
        self.call_fn = [fn_code(None)] * MAX_CALLS
        self.call_new = [u64(0)] * MAX_CALLS
        self.call_old = [u64(0)] * MAX_CALLS
        self.alloc_made: Any = z3.BoolVal(False)
        self.allocated = SymAlloc.none()
        self.copy_made: Any = z3.BoolVal(False)
        self.copy_src, self.copy_dst, self.copy_nbytes = u64(0), u64(0), u64(0)
        self.free_made: Any = z3.BoolVal(False)
        self.free_id, self.free_nbytes = u64(0), u64(0)
        self.copy_before_free: Any = z3.BoolVal(False)
        self.overflow: Any = z3.BoolVal(False)
        # (decision point, the input's address) -> (the input, kept so no other term takes its address; the value)
        self._sizes: dict[tuple[str, int], tuple[BV, BV]] = {}

    def size_at(self, at: DecisionPoints, point: str, rule: Any, nbytes: BV) -> BV:
        """`at(point, rule, nbytes)`, made once per step and request size.

        One reallocation asks kmalloc's physical size of the same request on
        up to three paths (a fresh allocation, a move, the vmalloc fallback);
        Z3 shares the equal terms, but building the size-class chain again
        through the Python API is a large part of the encoding's time.
        """
        key = (point, nbytes.as_ast().value)
        if key not in self._sizes:
            self._sizes[key] = (nbytes, at(point, rule, nbytes))
        return self._sizes[key][1]

    def call(self, g: Any, fn: Fn, new_bytes: BV, old_bytes: BV) -> None:
        for k in range(MAX_CALLS):
            here = z3.And(g, self.ncalls == k)
            self.call_fn[k] = ite(here, fn_code(fn), self.call_fn[k])
            self.call_new[k] = ite(here, new_bytes, self.call_new[k])
            self.call_old[k] = ite(here, old_bytes, self.call_old[k])
        self.ncalls = ite(g, self.ncalls + 1, self.ncalls)

    def new_allocation(self, g: Any, vmalloc: Any, requested: BV, physical: BV, huge: Any = False) -> SymAlloc:
        alloc = SymAlloc(z3.BoolVal(True), self.next_id, vmalloc, requested, physical, huge)
        self.alloc_made = z3.Or(self.alloc_made, g)
        self.allocated = ite(g, alloc, self.allocated)
        self.next_id = ite(g, self.next_id + 1, self.next_id)
        return alloc

    def copy(self, g: Any, src: SymAlloc, dst: SymAlloc, nbytes: BV) -> None:
        self.copy_made = z3.Or(self.copy_made, g)
        self.copy_src = ite(g, src.id, self.copy_src)
        self.copy_dst = ite(g, dst.id, self.copy_dst)
        self.copy_nbytes = ite(g, nbytes, self.copy_nbytes)

    def free(self, g: Any, alloc: SymAlloc, nbytes: BV) -> None:
        self.copy_before_free = ite(g, self.copy_made, self.copy_before_free)
        self.free_made = z3.Or(self.free_made, g)
        self.free_id = ite(g, alloc.id, self.free_id)
        self.free_nbytes = ite(g, nbytes, self.free_nbytes)

    def fresh(self, name: str, make: Any) -> Any:
        """A fresh variable named after this step, so repeated encodings give identical queries."""
        self.fresh_count += 1
        return make(f"{self.prefix}.{name}!{self.fresh_count}")

    def note_overflow(self, g: Any, fits: Any) -> None:
        """Record a wrap-around when `fits` is false on an active path."""
        self.overflow = z3.Or(self.overflow, z3.And(g, z3.Not(fits)))

    def mul(self, g: Any, a: BV, b: BV) -> BV:
        """usize multiplication; a wrap-around on an active path is recorded."""
        self.note_overflow(g, z3.BVMulNoOverflow(a, b, False))
        return a * b

    def effects(self) -> SymEffects:
        return SymEffects(
            tuple(self.call_fn),
            tuple(self.call_new),
            tuple(self.call_old),
            self.alloc_made,
            self.allocated,
            self.copy_made,
            self.copy_src,
            self.copy_dst,
            self.copy_nbytes,
            self.free_made,
            self.free_id,
            self.free_nbytes,
            self.copy_before_free,
        )


# --- physical memory -------------------------------------------------------


def next_power_of_two(x: BV) -> BV:
    """Smallest power of two >= x, for 1 <= x <= 2^63 (bit smearing)."""
    m = x - 1
    for shift in (1, 2, 4, 8, 16, 32):
        m = m | z3.LShR(m, shift)
    return m + 1


def kmalloc_physical(plat: Platform, nbytes: BV) -> BV:
    pages = div_ceil(nbytes, plat.page_size)
    result: BV = u64(plat.page_size) * next_power_of_two(pages)
    for size_class in reversed(kmalloc_size_classes(plat.page_size, plat.kmalloc_min_align)):
        result = term_if(z3.ULE(nbytes, size_class), u64(size_class), result)
    return result


def round_up(nbytes: BV, mapping: int) -> BV:
    return div_ceil(nbytes, mapping) * u64(mapping)


def vmalloc_physical(plat: Platform, nbytes: BV) -> BV:
    """allocator.vmalloc_physical: the largest huge mapping size the request reaches, else pages."""
    result: BV = round_up(nbytes, plat.page_size)
    for mapping in plat.huge_sizes:  # ascending: the largest that fits wins
        result = z3.If(z3.UGE(nbytes, mapping), round_up(nbytes, mapping), result)
    return result


def allocation_well_formed(plat: Platform, a: SymAlloc) -> Any:
    """What every live allocation satisfies: the counterpart of allocator.allocation_violations."""
    kmalloc_ok = z3.And(
        z3.UGE(a.requested, 1),
        z3.ULE(a.requested, plat.kmalloc_max_size),
        z3.UGE(a.physical, a.requested),
        z3.ULE(a.physical, plat.kmalloc_max_size),
        a.physical == kmalloc_physical(plat, a.physical),
    )
    vmalloc_ok = z3.And(
        z3.UGT(a.requested, plat.page_size),
        # Each rounding only where the rounded request fits in a usize: above, the Z3 term wraps
        # and the Python model's unbounded integer matches no physical size.
        z3.Or(
            z3.And(
                z3.ULE(a.requested, USIZE_MAX - max((plat.page_size, *plat.huge_sizes)) + 1),
                a.physical == vmalloc_physical(plat, a.requested),
            ),
            z3.And(
                z3.ULE(a.requested, USIZE_MAX - plat.page_size + 1),
                a.physical == round_up(a.requested, plat.page_size),
            ),
        ),
    )
    if plat.code.generic:
        return generic_well_formed(plat, a)
    return z3.Implies(a.live, z3.If(a.vmalloc, vmalloc_ok, kmalloc_ok))


# --- the C allocators --------------------------------------------------------


# The allocators' decision points and the seeded faults that override them: the
# counterpart of allocator.OVERRIDES, the same faults on the same points.
# Each override gets (plat, the value without the fault, *the point's inputs).
OVERRIDES: dict[str, tuple[str, Override]] = {
    "max-order-plus-one": (
        "kmalloc: within KMALLOC_MAX_SIZE",
        lambda plat, kernel, nbytes: z3.ULE(nbytes, 2 * plat.kmalloc_max_size),
    ),
    "kmalloc-max-ignored": ("kmalloc: within KMALLOC_MAX_SIZE", lambda plat, kernel, nbytes: z3.BoolVal(True)),
    "kmalloc-unrounded": ("kmalloc: physical size", lambda plat, kernel, nbytes: nbytes),
    "kmalloc-minalign-ignored": (
        "kmalloc: physical size",
        lambda plat, kernel, nbytes: kmalloc_physical(dataclasses.replace(plat, kmalloc_min_align=8), nbytes),
    ),
    "huge-rounding-ignored": ("vmalloc: physical size", lambda plat, kernel, nbytes: round_up(nbytes, plat.page_size)),
    "vmalloc-pages-floor": (
        "vmalloc: physical size",
        lambda plat, kernel, nbytes: z3.UDiv(nbytes, u64(plat.page_size)) * u64(plat.page_size),
    ),
    "vmalloc-recorded-as-kmalloc": ("vmalloc: kind", lambda plat, kernel: False),
    "kvmalloc-small-vmalloc": ("kvmalloc: vmalloc fallback", lambda plat, kernel, nbytes: z3.BoolVal(True)),
    "krealloc-copies-new-size": ("krealloc: bytes copied", lambda plat, kernel, old, nbytes: nbytes),
    "realloc-zero-keeps": ("realloc: size 0 frees", lambda plat, kernel: False),
    "realloc-zero-free-size": ("realloc: size 0 free layout", lambda plat, kernel, old_bytes: u64(0)),
    "vrealloc-frees-one-page-too-many": (
        "vrealloc: pages kept on shrink",
        lambda plat, kernel, nbytes: _minus_one_floor_zero(kernel()),
    ),
    "vrealloc-shrink-ignores-huge": ("vrealloc: mapped with small pages", lambda plat, kernel, old: z3.BoolVal(True)),
}


def _minus_one_floor_zero(x: BV) -> BV:
    return z3.If(x == 0, x, x - 1)


def _at(plat: Platform, rec: SymRecorder) -> DecisionPoints:
    return DecisionPoints(rec.faults, OVERRIDES, plat)


def kmalloc(plat: Platform, g: Any, nbytes: BV, outcome: SymOutcome, rec: SymRecorder) -> tuple[Any, SymAlloc]:
    at = _at(plat, rec)
    fits = at("kmalloc: within KMALLOC_MAX_SIZE", lambda n: z3.ULE(n, plat.kmalloc_max_size), nbytes)
    ok = z3.And(fits, outcome.kmalloc_ok)
    physical = rec.size_at(at, "kmalloc: physical size", functools.partial(kmalloc_physical, plat), nbytes)
    alloc = rec.new_allocation(z3.And(g, ok), z3.BoolVal(False), nbytes, physical)
    return ok, alloc


def vmalloc(
    plat: Platform, g: Any, nbytes: BV, outcome: SymOutcome, rec: SymRecorder, huge: bool = True
) -> tuple[Any, SymAlloc]:
    at = _at(plat, rec)
    ok = outcome.vmalloc_ok
    mapped = functools.partial(vmalloc_physical, plat) if huge else (lambda n: round_up(n, plat.page_size))
    physical = at("vmalloc: physical size", mapped, nbytes)
    vmalloc = z3.BoolVal(at("vmalloc: kind", lambda: True))  # what is_vmalloc_addr will answer for it
    mapped_huge: Any = False
    if plat.code.tracks_huge and huge:
        # allocator.vmalloc: the mapping is huge exactly when the request reaches the smallest huge size.
        mapped_huge = z3.UGE(nbytes, plat.huge_sizes[0]) if plat.huge_sizes else z3.BoolVal(False)
    alloc = rec.new_allocation(z3.And(g, ok), vmalloc, nbytes, physical, mapped_huge)
    return ok, alloc


def kvmalloc(plat: Platform, g: Any, nbytes: BV, outcome: SymOutcome, rec: SymRecorder) -> tuple[Any, SymAlloc]:
    km_ok, km = kmalloc(plat, g, nbytes, outcome, rec)
    above_page = _at(plat, rec)("kvmalloc: vmalloc fallback", lambda n: z3.UGT(n, plat.page_size), nbytes)
    try_vmalloc = z3.And(z3.Not(km_ok), above_page, z3.ULE(nbytes, INT_MAX))
    vm_ok, vm = vmalloc(plat, z3.And(g, try_vmalloc), nbytes, outcome, rec)
    return z3.Or(km_ok, z3.And(try_vmalloc, vm_ok)), ite(km_ok, km, vm)


def krealloc(
    plat: Platform, g: Any, old: SymAlloc, nbytes: BV, outcome: SymOutcome, rec: SymRecorder
) -> tuple[Any, SymAlloc]:
    fits = z3.ULE(nbytes, old.physical)
    same = dataclasses.replace(old, requested=nbytes)
    moving = z3.And(g, z3.Not(fits))
    ok, new = kmalloc(plat, moving, nbytes, outcome, rec)
    copied = _at(plat, rec)("krealloc: bytes copied", lambda old, nbytes: old.physical, old, nbytes)
    rec.copy(z3.And(moving, ok), old, new, copied)
    rec.free(z3.And(moving, ok), old, old.requested)
    return z3.Or(fits, ok), ite(fits, same, new)


def vrealloc(
    plat: Platform, g: Any, old: SymAlloc, nbytes: BV, outcome: SymOutcome, rec: SymRecorder
) -> tuple[Any, SymAlloc]:
    fits = z3.ULE(nbytes, old.physical)
    same = dataclasses.replace(old, requested=nbytes)
    if plat.code.vrealloc == "next":
        # allocator._vrealloc_shrink_frees_pages: a shrink keeps the area and frees its tail pages.
        shrinking = z3.ULE(nbytes, old.requested)
        same = ite(shrinking, _vrealloc_shrunk(plat, old, nbytes, rec), same)
        fits = z3.Or(shrinking, fits)
    moving = z3.And(g, z3.Not(fits))
    ok, new = vmalloc(plat, moving, nbytes, outcome, rec, huge=False)
    rec.copy(z3.And(moving, ok), old, new, old.requested)
    rec.free(z3.And(moving, ok), old, old.requested)
    return z3.Or(fits, ok), ite(fits, same, new)


def _vrealloc_shrunk(plat: Platform, old: SymAlloc, nbytes: BV, rec: SymRecorder) -> SymAlloc:
    """allocator._vrealloc_shrink_frees_pages: the area with only the pages of `nbytes`, unless mapped huge."""
    at = _at(plat, rec)
    kept = at("vrealloc: pages kept on shrink", lambda n: div_ceil(n, plat.page_size), nbytes)
    small_pages = at("vrealloc: mapped with small pages", lambda old: z3.Not(old.huge), old)
    kept_bytes = kept * u64(plat.page_size)  # at most the old pages, so no wrap-around
    frees = z3.And(z3.ULT(kept_bytes, old.physical), small_pages)
    return dataclasses.replace(old, requested=nbytes, physical=z3.If(frees, kept_bytes, old.physical))


def kvrealloc(
    plat: Platform, g: Any, old: SymAlloc, nbytes: BV, outcome: SymOutcome, rec: SymRecorder
) -> tuple[Any, SymAlloc]:
    fresh = z3.And(g, z3.Not(old.live))
    fresh_ok, fresh_new = kvmalloc(plat, fresh, nbytes, outcome, rec)

    on_vmalloc = z3.And(g, old.live, old.vmalloc)
    v_ok, v_new = vrealloc(plat, on_vmalloc, old, nbytes, outcome, rec)

    on_kmalloc = z3.And(g, old.live, z3.Not(old.vmalloc))
    k_ok, k_new = krealloc(plat, on_kmalloc, old, nbytes, outcome, rec)
    fallback = z3.And(on_kmalloc, z3.Not(k_ok))
    f_ok, f_new = kvmalloc(plat, fallback, nbytes, outcome, rec)
    rec.copy(z3.And(fallback, f_ok), old, f_new, old.physical)
    rec.free(z3.And(fallback, f_ok), old, old.requested)

    kmalloc_ok = z3.Or(k_ok, f_ok)
    kmalloc_new = ite(k_ok, k_new, f_new)
    ok = z3.If(old.live, z3.If(old.vmalloc, v_ok, kmalloc_ok), fresh_ok)
    new = ite(old.live, ite(old.vmalloc, v_new, kmalloc_new), fresh_new)
    return ok, new


# --- the Rust KVmalloc allocator ---------------------------------------------


def realloc(
    plat: Platform,
    g: Any,
    fn: Fn,
    ptr: SymAlloc,
    new_bytes: BV,
    old_bytes: BV,
    outcome: SymOutcome,
    rec: SymRecorder,
) -> tuple[Any, SymAlloc]:
    """`KVmalloc::realloc`; returns (Ok?, the allocation now behind the pointer)."""
    at = _at(plat, rec)
    rec.call(g, fn, new_bytes, old_bytes)
    current = ite(old_bytes != 0, ptr, SymAlloc.none())
    freeing = new_bytes == 0
    if at("realloc: size 0 frees", lambda: True):
        free_bytes = at("realloc: size 0 free layout", lambda old_bytes: old_bytes, old_bytes)
        rec.free(z3.And(g, freeing, current.live), current, free_bytes)
    ok, new = REALLOC_FUNCS[plat.code.allocator](plat, z3.And(g, z3.Not(freeing)), current, new_bytes, outcome, rec)
    result_ok = z3.Or(freeing, ok)
    result = ite(freeing, SymAlloc.none(), ite(ok, new, ptr))
    return result_ok, result


def krealloc_or_kmalloc(
    plat: Platform, g: Any, old: SymAlloc, nbytes: BV, outcome: SymOutcome, rec: SymRecorder
) -> tuple[Any, SymAlloc]:
    """allocator.krealloc_or_kmalloc: `Kmalloc::realloc`."""
    fresh_ok, fresh = kmalloc(plat, z3.And(g, z3.Not(old.live)), nbytes, outcome, rec)
    k_ok, k_new = krealloc(plat, z3.And(g, old.live), old, nbytes, outcome, rec)
    return z3.If(old.live, k_ok, fresh_ok), ite(old.live, k_new, fresh)


def vrealloc_or_vmalloc(
    plat: Platform, g: Any, old: SymAlloc, nbytes: BV, outcome: SymOutcome, rec: SymRecorder
) -> tuple[Any, SymAlloc]:
    """allocator.vrealloc_or_vmalloc: `Vmalloc::realloc`."""
    fresh_ok, fresh = vmalloc(plat, z3.And(g, z3.Not(old.live)), nbytes, outcome, rec, huge=False)
    v_ok, v_new = vrealloc(plat, z3.And(g, old.live), old, nbytes, outcome, rec)
    return z3.If(old.live, v_ok, fresh_ok), ite(old.live, v_new, fresh)


REALLOC_FUNCS = {"kvmalloc": kvrealloc, "kmalloc": krealloc_or_kmalloc, "vmalloc": vrealloc_or_vmalloc}


def generic_well_formed(plat: Platform, a: SymAlloc) -> Any:
    """allocator._generic_allocation_violations: what every live allocation of a generic model satisfies."""
    kmalloc_ok = z3.And(
        z3.UGE(a.requested, 1),
        z3.ULE(a.requested, plat.kmalloc_max_size),
        z3.UGE(a.physical, a.requested),
        z3.ULE(a.physical, plat.kmalloc_max_size),
        a.physical == kmalloc_physical(plat, a.physical),
    )
    page = plat.page_size
    least = 2 * page if plat.code.allocator == "kvmalloc" else page
    within = z3.And(z3.UGE(a.requested, 1), z3.ULE(a.requested, a.physical), z3.URem(a.physical, u64(page)) == 0)
    huge = a.huge if plat.code.tracks_huge else z3.BoolVal(False)
    if not plat.code.tracks_huge:
        sized = z3.UGE(a.physical, least)
    else:
        # The rounding fits a usize for every physical size a vmalloc area can have (at most 2^63 + a page).
        huge_whole = z3.BoolVal(False)
        if plat.huge_sizes:
            huge_whole = z3.And(
                z3.UGE(a.physical, plat.huge_sizes[0]),
                z3.ULE(a.physical, ISIZE_MAX + 1),
                vmalloc_physical(plat, a.physical) == a.physical,
            )
        exact = z3.And(z3.ULE(a.requested, USIZE_MAX - page + 1), a.physical == round_up(a.requested, page))
        sized = z3.If(huge, huge_whole, exact)
    vmalloc_ok = z3.And(within, sized)
    if plat.code.tracks_huge:
        # Only a live kvmalloc area can be mapped huge (vmalloc() and vrealloc's new areas use small pages).
        can_be_huge = a.live if plat.code.allocator == "kvmalloc" else z3.BoolVal(False)
        kmalloc_ok = z3.And(kmalloc_ok, z3.Not(huge))
        vmalloc_ok = z3.And(vmalloc_ok, z3.Implies(huge, can_be_huge))
        return z3.And(
            z3.Implies(z3.Not(a.live), z3.Not(huge)),
            _by_allocator(plat, a, kmalloc_ok, vmalloc_ok),
        )
    return _by_allocator(plat, a, kmalloc_ok, vmalloc_ok)


def _by_allocator(plat: Platform, a: SymAlloc, kmalloc_ok: Any, vmalloc_ok: Any) -> Any:
    if plat.code.allocator == "kmalloc":
        return z3.Implies(a.live, z3.And(z3.Not(a.vmalloc), kmalloc_ok))
    if plat.code.allocator == "vmalloc":
        return z3.Implies(a.live, z3.And(a.vmalloc, vmalloc_ok))
    return z3.Implies(a.live, z3.If(a.vmalloc, vmalloc_ok, kmalloc_ok))
