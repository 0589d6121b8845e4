"""Reference model of KVmalloc and the C allocators beneath it.

Mirrors rust/kernel/alloc/allocator.rs (`KVmalloc`, `ReallocFunc::call`) and
mm/slub.c, mm/vmalloc.c (kvmalloc, kvrealloc, krealloc, vrealloc), as stated in
../shared/SEMANTICS.md. Nothing here is random: whether a kmalloc or a vmalloc
attempt succeeds is an `Outcome`, part of the action that drives the step.

A step records what the allocator did in `Effects`, a record with fixed slots
(at most one new allocation, one copy and one free per step) so that the Z3
encoding in allocator_z3.py can carry exactly the same record.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, replace

from models.faults import DecisionPoints, Override
from models.machine import INT_MAX, ISIZE_MAX, Platform, div_ceil, kmalloc_size_classes, vmap_mapping_size


class Kind(enum.Enum):
    KMALLOC = "kmalloc"
    VMALLOC = "vmalloc"


@dataclass(frozen=True)
class Allocation:
    """One live C allocation: its identity, kind, requested and physical bytes.

    `huge`: a vmalloc area mapped with huge pages (vm_area_page_order > 0). Only
    linux-next's vrealloc reads it, so only models with that vrealloc set it
    (KernelCode.tracks_huge); for every other model it stays False.
    """

    id: int
    kind: Kind
    requested: int
    physical: int
    huge: bool = False


@dataclass(frozen=True)
class Outcome:
    """The allocator's nondeterminism for one step.

    `kmalloc_ok` decides every kmalloc attempt of the step (krealloc's new object
    and kvmalloc's first try use the same size and flags, so they share one
    answer); `vmalloc_ok` decides every vmalloc attempt.
    """

    kmalloc_ok: bool = True
    vmalloc_ok: bool = True

    def describe(self) -> str:
        km = "kmalloc ok" if self.kmalloc_ok else "kmalloc fails"
        vm = "vmalloc ok" if self.vmalloc_ok else "vmalloc fails"
        return f"{km}, {vm}"


ALL_OUTCOMES = tuple(Outcome(k, v) for k in (True, False) for v in (True, False))


class Fn(enum.IntEnum):
    """A call through the Rust `Allocator` trait."""

    ALLOC = 1
    REALLOC = 2
    FREE = 3


@dataclass(frozen=True)
class Call:
    fn: Fn
    new_bytes: int
    old_bytes: int


@dataclass(frozen=True)
class Copy:
    src: int
    dst: int
    nbytes: int


@dataclass(frozen=True)
class Free:
    """A free of allocation `alloc_id`, given a layout of `nbytes` bytes."""

    alloc_id: int
    nbytes: int


MAX_CALLS = 2


@dataclass(frozen=True)
class Effects:
    """What one step asked of the allocator and what the allocator did."""

    calls: tuple[Call, ...] = ()
    allocated: Allocation | None = None
    copied: Copy | None = None
    freed: Free | None = None
    # True when both a copy and a free happened and the copy came first.
    copy_before_free: bool = False


@dataclass
class Recorder:
    """Collects the effects of one step while the model runs; local to that step."""

    next_id: int
    calls: list[Call] = field(default_factory=list)
    allocated: Allocation | None = None
    copied: Copy | None = None
    freed: Free | None = None
    copy_before_free: bool = False
    overflow: bool = False
    faults: frozenset[str] = frozenset()  # seeded allocator faults (models/faults.py)

    def call(self, fn: Fn, new_bytes: int, old_bytes: int) -> None:
        assert len(self.calls) < MAX_CALLS, "model makes more allocator calls than Effects holds"
        self.calls.append(Call(fn, new_bytes, old_bytes))

    def new_allocation(self, kind: Kind, requested: int, physical: int) -> Allocation:
        assert self.allocated is None, "model allocates twice in one step"
        self.allocated = Allocation(self.next_id, kind, requested, physical)
        self.next_id += 1
        return self.allocated

    def copy(self, src: Allocation, dst: Allocation, nbytes: int) -> None:
        assert self.copied is None, "model copies twice in one step"
        self.copied = Copy(src.id, dst.id, nbytes)

    def free(self, alloc: Allocation, nbytes: int) -> None:
        assert self.freed is None, "model frees twice in one step"
        self.freed = Free(alloc.id, nbytes)
        self.copy_before_free = self.copied is not None

    def effects(self) -> Effects:
        return Effects(tuple(self.calls), self.allocated, self.copied, self.freed, self.copy_before_free)


# --- physical memory -------------------------------------------------------


def kmalloc_physical(plat: Platform, nbytes: int) -> int:
    """ksize() of a fresh kmalloc(nbytes): a slab size class, or 2^order pages.

    mm/slub.c (v7.1), __do_kmalloc_node: up to KMALLOC_MAX_CACHE_SIZE the object
    comes from kmalloc_slab(), the smallest class that holds it (include/linux/slab.h,
    __kmalloc_index; classes folded by the minimum alignment, machine.kmalloc_size_classes);
    above it ___kmalloc_large_node allocates get_order(size) pages: the smallest
    power of two that holds the request. __ksize reports the class size, or
    page_size() of the compound page.
    """
    if nbytes <= plat.kmalloc_max_cache_size:
        return next(c for c in kmalloc_size_classes(plat.page_size, plat.kmalloc_min_align) if c >= nbytes)
    pages = div_ceil(nbytes, plat.page_size)
    return plat.page_size * (1 << (pages - 1).bit_length())


def vmalloc_physical(plat: Platform, nbytes: int) -> int:
    """The memory a kvmalloc'd vmalloc area maps: its size rounded up to its mapping size.

    mm/vmalloc.c (v7.1), __vmalloc_node_range_noprof: PAGE_ALIGN(size) with
    small pages, or ALIGN(size, 1 << shift) for a huge mapping (vmap_mapping_size);
    __get_vm_area_node adds one guard page, unmapped, which costs no memory.
    """
    mapping = vmap_mapping_size(plat, nbytes)
    return div_ceil(nbytes, mapping) * mapping


# --- the C allocators --------------------------------------------------------


# The allocators' decision points and the seeded faults that override them
# (models/faults.py); allocator_z3.OVERRIDES overrides the same points in Z3 terms.
# Each override gets (plat, the value without the fault, *the point's inputs).
OVERRIDES: dict[str, tuple[str, Override]] = {
    "max-order-plus-one": (
        "kmalloc: within KMALLOC_MAX_SIZE",
        lambda plat, kernel, nbytes: nbytes <= 2 * plat.kmalloc_max_size,
    ),
    "kmalloc-max-ignored": ("kmalloc: within KMALLOC_MAX_SIZE", lambda plat, kernel, nbytes: True),
    "kmalloc-unrounded": ("kmalloc: physical size", lambda plat, kernel, nbytes: nbytes),
    "kmalloc-minalign-ignored": (
        "kmalloc: physical size",
        lambda plat, kernel, nbytes: kmalloc_physical(replace(plat, kmalloc_min_align=8), nbytes),
    ),
    "huge-rounding-ignored": ("vmalloc: physical size", lambda plat, kernel, nbytes: page_rounded(plat, nbytes)),
    "vmalloc-pages-floor": (
        "vmalloc: physical size",
        lambda plat, kernel, nbytes: nbytes // plat.page_size * plat.page_size,
    ),
    "vmalloc-recorded-as-kmalloc": ("vmalloc: kind", lambda plat, kernel: Kind.KMALLOC),
    "kvmalloc-small-vmalloc": ("kvmalloc: vmalloc fallback", lambda plat, kernel, nbytes: True),
    "krealloc-copies-new-size": ("krealloc: bytes copied", lambda plat, kernel, old, nbytes: nbytes),
    "realloc-zero-keeps": ("realloc: size 0 frees", lambda plat, kernel: False),
    "realloc-zero-free-size": ("realloc: size 0 free layout", lambda plat, kernel, old_bytes: 0),
    "vrealloc-frees-one-page-too-many": (
        "vrealloc: pages kept on shrink",
        lambda plat, kernel, nbytes: max(kernel() - 1, 0),
    ),
    "vrealloc-shrink-ignores-huge": ("vrealloc: mapped with small pages", lambda plat, kernel, old: True),
}


def _at(plat: Platform, rec: Recorder) -> DecisionPoints:
    return DecisionPoints(rec.faults, OVERRIDES, plat)


def kmalloc(plat: Platform, nbytes: int, outcome: Outcome, rec: Recorder) -> Allocation | None:
    at = _at(plat, rec)
    # Above KMALLOC_MAX_SIZE the page allocator has no order to serve it.
    # mm/slub.c (v7.1), ___kmalloc_large_node: an order above MAX_PAGE_ORDER fails.
    fits = at("kmalloc: within KMALLOC_MAX_SIZE", lambda n: n <= plat.kmalloc_max_size, nbytes)
    if not fits or not outcome.kmalloc_ok:
        return None
    physical = at("kmalloc: physical size", functools.partial(kmalloc_physical, plat), nbytes)
    return rec.new_allocation(Kind.KMALLOC, nbytes, physical)


def page_rounded(plat: Platform, nbytes: int) -> int:
    """PAGE_ALIGN(n): the memory of a vmalloc area mapped with small pages."""
    return div_ceil(nbytes, plat.page_size) * plat.page_size


def vmalloc(plat: Platform, nbytes: int, outcome: Outcome, rec: Recorder, huge: bool = True) -> Allocation | None:
    """A vmalloc area; `huge` when the caller passes VM_ALLOW_HUGE_VMAP (kvmalloc does, vrealloc does not)."""
    at = _at(plat, rec)
    if not outcome.vmalloc_ok:
        return None
    mapped = functools.partial(vmalloc_physical if huge else page_rounded, plat)
    physical = at("vmalloc: physical size", mapped, nbytes)
    kind = at("vmalloc: kind", lambda: Kind.VMALLOC)  # what is_vmalloc_addr will answer for it
    area = rec.new_allocation(kind, nbytes, physical)
    if plat.code.tracks_huge and huge and vmap_mapping_size(plat, nbytes) > plat.page_size:
        # The mapping size __vmalloc_node_range_noprof chose (vm_area_page_order > 0).
        area = rec.allocated = replace(area, huge=True)
    return area


def kvmalloc(plat: Platform, nbytes: int, outcome: Outcome, rec: Recorder) -> Allocation | None:
    """__kvmalloc_node_noprof (mm/slub.c, v7.1; mm/util.c before v6.12): kmalloc first.

    The kmalloc attempt gets kmalloc_gfp_adjust's flags (above PAGE_SIZE: no
    warning, no direct reclaim, no __GFP_NOFAIL), so it may fail however much
    memory is free: an `Outcome`. Its result is final up to PAGE_SIZE; above, a
    size over INT_MAX fails, else __vmalloc_node_range_noprof with
    VM_ALLOW_HUGE_VMAP (GFP_KERNEL may block) serves it.
    """
    obj = kmalloc(plat, nbytes, outcome, rec)
    if obj is not None or not _at(plat, rec)("kvmalloc: vmalloc fallback", lambda n: n > plat.page_size, nbytes):
        return obj
    if nbytes > INT_MAX:
        return None
    return vmalloc(plat, nbytes, outcome, rec)


def krealloc(plat: Platform, old: Allocation, nbytes: int, outcome: Outcome, rec: Recorder) -> Allocation | None:
    """krealloc: the same object if `nbytes` fits in ksize(old), else move it.

    mm/slub.c (v7.1), __do_krealloc: `ks = ksize(p)`; if the new size fits in
    ks the object is kept (only its poisoning and zeroing change); otherwise
    kmalloc_node_track_caller of the new size, memcpy of ks bytes, and
    krealloc_node_align_noprof kfrees the old object.
    """
    if nbytes <= old.physical:
        return replace(old, requested=nbytes)
    new = kmalloc(plat, nbytes, outcome, rec)
    if new is None:
        return None
    copied = _at(plat, rec)("krealloc: bytes copied", lambda old, nbytes: old.physical, old, nbytes)
    rec.copy(old, new, copied)  # memcpy of ksize(p) bytes
    rec.free(old, old.requested)
    return new


def vrealloc(plat: Platform, old: Allocation, nbytes: int, outcome: Outcome, rec: Recorder) -> Allocation | None:
    """vrealloc: keep the area when shrinking (a TODO in mm/vmalloc.c), grow in place if the pages suffice.

    mm/vmalloc.c (v7.1), vrealloc_node_align_noprof: `size <= vm->requested_size`
    keeps the area and frees nothing (its TODO); `size <= get_vm_area_size(vm)`
    (the mapped size, huge rounding included) grows in place; otherwise
    __vmalloc_node_noprof, which passes no VM_ALLOW_HUGE_VMAP (small pages), a
    memcpy of the old requested size and vfree of the old area.
    """
    if plat.code.vrealloc == "next" and nbytes <= old.requested:
        return _vrealloc_shrink_frees_pages(plat, old, nbytes, rec)
    if nbytes <= old.physical:
        # linux-next checks the pages the area still has (vm->nr_pages << PAGE_SHIFT, "mm/vmalloc: use
        # physical page count for vrealloc() grow-in-place check"): `physical` in this model, as in v7.1.
        return replace(old, requested=nbytes)
    new = vmalloc(plat, nbytes, outcome, rec, huge=False)
    if new is None:
        return None
    # linux-next copies min(size, old_size); on this path size > old_size, so both copy old_size.
    rec.copy(old, new, old.requested)
    rec.free(old, old.requested)
    return new


def _vrealloc_shrink_frees_pages(plat: Platform, old: Allocation, nbytes: int, rec: Recorder) -> Allocation:
    """linux-next's vrealloc shrinking in place: the same area, without the pages past the new size.

    mm/vmalloc.c (linux-next, "mm/vmalloc: free unused pages on vrealloc() shrink"),
    vrealloc_node_align_noprof: for `size <= vm->requested_size`, new_nr_pages =
    PAGE_ALIGN(size) >> PAGE_SHIFT; if that is below vm->nr_pages and the area is
    mapped with small pages (vm_area_page_order(vm) == 0; a huge mapping cannot
    lose part of a huge page), the tail is unmapped and vm_area_free_pages frees
    it. The other conditions (no VM_FLUSH_RESET_PERMS or VM_USERMAP, GFP flags
    that allow IO and FS) hold for kvmalloc's and vmalloc's areas with GFP_KERNEL.
    Nothing is allocated, copied or freed as an allocation: the area stays.
    """
    at = _at(plat, rec)
    physical = old.physical
    kept = at("vrealloc: pages kept on shrink", lambda n: div_ceil(n, plat.page_size), nbytes)
    small_pages = at("vrealloc: mapped with small pages", lambda old: not old.huge, old)
    if kept * plat.page_size < old.physical and small_pages:
        physical = kept * plat.page_size
    return replace(old, requested=nbytes, physical=physical)


def kvrealloc(
    plat: Platform, old: Allocation | None, nbytes: int, outcome: Outcome, rec: Recorder
) -> Allocation | None:
    """kvrealloc: vrealloc for a vmalloc address, else krealloc with a kvmalloc fallback.

    mm/slub.c (v7.1), kvrealloc_node_align_noprof: is_vmalloc_addr(p) picks
    vrealloc; otherwise krealloc with kmalloc_gfp_adjust's flags, and if that
    fails a fresh __kvmalloc_node, memcpy of ksize(p) bytes and kfree(p).
    """
    if old is None:
        # krealloc(NULL) is kmalloc; its failure falls back to kvmalloc, whose
        # kmalloc attempt fails the same way, leaving vmalloc.
        return kvmalloc(plat, nbytes, outcome, rec)
    if old.kind is Kind.VMALLOC:
        return vrealloc(plat, old, nbytes, outcome, rec)
    moved = krealloc(plat, old, nbytes, outcome, rec)
    if moved is not None:
        return moved
    new = kvmalloc(plat, nbytes, outcome, rec)
    if new is None:
        return None
    rec.copy(old, new, old.physical)  # memcpy(n, p, ksize(p)) then kfree(p)
    rec.free(old, old.requested)
    return new


# --- the Rust KVmalloc allocator ---------------------------------------------


def realloc(
    plat: Platform,
    fn: Fn,
    ptr: Allocation | None,
    new_bytes: int,
    old_bytes: int,
    outcome: Outcome,
    rec: Recorder,
) -> tuple[bool, Allocation | None]:
    """`KVmalloc::realloc` (`alloc` and `free` are realloc with no pointer and with size 0).

    rust/kernel/alloc/allocator.rs (v7.1), ReallocFunc::call: a zero-sized new
    layout frees the old pointer and returns a dangling one; an empty old layout
    passes NULL, so the C function allocates afresh (kvrealloc of NULL is kvmalloc).

    Returns (Ok?, the allocation now behind the pointer; None when dangling).
    """
    at = _at(plat, rec)
    rec.call(fn, new_bytes, old_bytes)
    # ReallocFunc::call passes NULL for a pointer whose old layout is empty.
    current = ptr if old_bytes != 0 else None
    if new_bytes == 0:
        # Size 0 frees the old allocation and returns a dangling pointer.
        if current is not None and at("realloc: size 0 frees", lambda: True):
            rec.free(current, at("realloc: size 0 free layout", lambda old_bytes: old_bytes, old_bytes))
        return True, None
    new = REALLOC_FUNCS[plat.code.allocator](plat, current, new_bytes, outcome, rec)
    if new is None:
        return False, ptr
    return True, new


def krealloc_or_kmalloc(
    plat: Platform, old: Allocation | None, nbytes: int, outcome: Outcome, rec: Recorder
) -> Allocation | None:
    """`Kmalloc::realloc` (allocator.rs, v7.1: ReallocFunc::KREALLOC): krealloc, which is kmalloc for NULL."""
    return kmalloc(plat, nbytes, outcome, rec) if old is None else krealloc(plat, old, nbytes, outcome, rec)


def vrealloc_or_vmalloc(
    plat: Platform, old: Allocation | None, nbytes: int, outcome: Outcome, rec: Recorder
) -> Allocation | None:
    """`Vmalloc::realloc` (allocator.rs, v7.1: ReallocFunc::VREALLOC): vrealloc, which for NULL is
    __vmalloc_node_noprof (mm/vmalloc.c, v7.1): small pages, no VM_ALLOW_HUGE_VMAP, any size."""
    if old is None:
        return vmalloc(plat, nbytes, outcome, rec, huge=False)
    return vrealloc(plat, old, nbytes, outcome, rec)


# The C function behind each Rust allocator's realloc (rust/kernel/alloc/allocator.rs, v7.1).
REALLOC_FUNCS = {"kvmalloc": kvrealloc, "kmalloc": krealloc_or_kmalloc, "vmalloc": vrealloc_or_vmalloc}


def allocation_violations(plat: Platform, a: Allocation) -> list[str]:
    """What every live allocation satisfies, as broken clauses (empty when well formed).

    A kmalloc object's physical size is some ksize at least its requested size
    (krealloc keeps a larger object when shrinking); a vmalloc area exists only
    above a page (kvmalloc's rule) and maps its request rounded up to its
    mapping size (a page, or a huge mapping where the platform has them).
    """
    if plat.code.generic:
        return _generic_allocation_violations(plat, a)
    if a.kind is Kind.KMALLOC:
        broken = []
        if not 1 <= a.requested <= plat.kmalloc_max_size:
            broken.append("kmalloc request within 1..KMALLOC_MAX_SIZE")
        if not a.requested <= a.physical <= plat.kmalloc_max_size or kmalloc_physical(plat, a.physical) != a.physical:
            broken.append("kmalloc physical size is a ksize at least the request")
        return broken
    broken = []
    if a.requested <= plat.page_size:
        broken.append("vmalloc request above a page")
    # kvmalloc's areas may be mapped huge, vrealloc's new areas use small pages.
    if a.physical not in (vmalloc_physical(plat, a.requested), page_rounded(plat, a.requested)):
        broken.append("vmalloc physical size is the request rounded to its mapping size")
    return broken


def _generic_allocation_violations(plat: Platform, a: Allocation) -> list[str]:
    """allocation_violations for the generic shrink_to, whose realloc shrinks areas in place.

    A kmalloc object is as above. A vmalloc area keeps its pages when v7.1's
    vrealloc shrinks it, so its request is anything up to them; KVmalloc's areas
    are made above a page (kvmalloc, or vrealloc growing one), Vmalloc's from one
    byte. With linux-next's vrealloc, an area with small pages holds exactly the
    pages of its request (a shrink frees the rest, growing in place stays within
    them), and a huge-mapped one keeps its huge rounding.
    """
    broken = []
    kinds = {"kvmalloc": (Kind.KMALLOC, Kind.VMALLOC), "kmalloc": (Kind.KMALLOC,), "vmalloc": (Kind.VMALLOC,)}
    if a.kind not in kinds[plat.code.allocator]:
        broken.append(f"{plat.code.allocator} makes no {a.kind.value} allocation")
    if a.huge and (not plat.code.tracks_huge or a.kind is Kind.KMALLOC or plat.code.allocator != "kvmalloc"):
        broken.append("only kvmalloc maps an area huge, and only linux-next's vrealloc models it")
    if a.kind is Kind.KMALLOC:
        if not 1 <= a.requested <= plat.kmalloc_max_size:
            broken.append("kmalloc request within 1..KMALLOC_MAX_SIZE")
        if not a.requested <= a.physical <= plat.kmalloc_max_size or kmalloc_physical(plat, a.physical) != a.physical:
            broken.append("kmalloc physical size is a ksize at least the request")
        return broken
    if not 1 <= a.requested <= a.physical or a.physical % plat.page_size != 0:
        broken.append("vmalloc request within the area's pages")
    least = 2 * plat.page_size if plat.code.allocator == "kvmalloc" else plat.page_size
    if not plat.code.tracks_huge:
        if a.physical < least:
            broken.append("vmalloc area at least its smallest size")
    elif a.huge:
        whole = vmalloc_physical(plat, a.physical) == a.physical <= ISIZE_MAX + 1
        if not plat.huge_sizes or a.physical < plat.huge_sizes[0] or not whole:
            broken.append("huge vmalloc area a whole number of its mappings")
    elif a.physical != page_rounded(plat, a.requested):
        broken.append("vmalloc area with small pages holds exactly its request's pages")
    return broken
