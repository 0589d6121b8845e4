"""The two encodings agree on every allocator function and on what a valid state is, over whole domains.

The stateful cross-check samples steps; this compares the pieces the steps are
built from, where their domains are small enough to cover. For each function
with a Python and a Z3 side:

- below two pages, every request size: the Python function is computed at
  every byte count and grouped into maximal runs of one answer, and Z3 proves
  (UNSAT) that its term gives that answer on the whole run;
- above, up to the limits: every page count up to past KMALLOC_MAX_SIZE at
  its first and last byte and one byte before, and the limits themselves
  (KMALLOC_MAX_SIZE, INT_MAX, usize::MAX), each point evaluated on both sides.

The type invariants are compared on a grid of valid and invalid states (every
clause broken alone and in pairs, at the boundaries of each field), the Z3
term evaluated with the state substituted in. The Python model's clause "one
identity per element" has no Z3 counterpart (Z3's elements are an array), so
the grid's states always have one identity per element.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import z3

from models import allocator as kv
from models import allocator_z3 as kvz
from models.allocator import ALL_OUTCOMES, Allocation, Kind, Outcome, Recorder
from models.allocator_z3 import SymAlloc, SymRecorder, u64
from models.elements import Elements
from models.machine import BITS, INT_MAX, ISIZE_MAX, PAGE_SIZES, PRESETS, USIZE_MAX, Platform, div_ceil
from models.vec import VecState
from models.vec_z3 import SymPlatform, SymVec, lift_outcome, type_invariant

# The explorer's small page and the real ones.
AGREEMENT_PAGE_SIZES = (64, *PAGE_SIZES)
ELEM_SIZES = (0, 1, 8, 24, 4096)
Value = tuple[int | bool, ...]


@dataclass
class Agreement:
    """One function compared on one page size: how much, and where the two sides part."""

    name: str
    page_size: int
    values: int = 0  # Python answers compared
    proofs: int = 0  # Z3 proofs over a run of inputs
    disagreements: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = "agree" if not self.disagreements else f"DISAGREE ({len(self.disagreements)})"
        return f"{self.name} (PAGE_SIZE {self.page_size}): {self.values} inputs, {self.proofs} run proofs: {verdict}"


def _equal(terms: tuple[Any, ...], value: Value) -> Any:
    eqs = [t == (z3.BoolVal(v) if isinstance(v, bool) else u64(v)) for t, v in zip(terms, value, strict=True)]
    return z3.And(eqs)


def runs(py: Callable[[int], Value], lo: int, hi: int) -> Iterator[tuple[int, int, Value]]:
    """The Python function at every n in lo..hi, as maximal runs (first, last, answer)."""
    start, current = lo, py(lo)
    for n in range(lo + 1, hi + 1):
        value = py(n)
        if value != current:
            yield start, n - 1, current
            start, current = n, value
    yield start, hi, current


def compare(
    result: Agreement,
    py: Callable[[int], Value],
    sym: Callable[[Any], tuple[Any, ...]],
    exhaustive: tuple[int, int],
    points: Iterable[int],
) -> Agreement:
    """Every n of `exhaustive` (run by run, proved), and each of `points` (evaluated on both sides)."""
    n = z3.BitVec("n", BITS)
    terms = sym(n)
    solver = z3.Solver()
    solver.set("timeout", 30_000)
    for first, last, value in runs(py, *exhaustive):
        result.values += last - first + 1
        result.proofs += 1
        answer = solver.check(z3.ULE(u64(first), n), z3.ULE(n, u64(last)), z3.Not(_equal(terms, value)))
        if answer != z3.unsat:
            witness = solver.model().eval(n, model_completion=True) if answer == z3.sat else "undecided"
            result.disagreements.append(f"n in {first}..{last}: Python {value}, Z3 differs at n = {witness}")
    for p in sorted(set(points)):
        result.values += 1
        value = py(p)
        if not z3.is_true(z3.simplify(z3.substitute(_equal(terms, value), (n, u64(p))))):
            shown = [z3.simplify(z3.substitute(t, (n, u64(p)))) for t in terms]
            result.disagreements.append(f"n = {p}: Python {value}, Z3 {shown}")
    return result


def page_edges(plat: Platform, up_to_pages: int) -> list[int]:
    """One byte before, at and after every page multiple up to `up_to_pages` pages."""
    page = plat.page_size
    return [b for k in range(1, up_to_pages + 1) for b in (k * page - 1, k * page, k * page + 1)]


def order_edges(plat: Platform, up_to_pages: int) -> list[int]:
    """Page edges only where a page order changes: page counts 2^k - 1, 2^k and 2^k + 1."""
    counts = {c for k in range(up_to_pages.bit_length() + 1) for c in ((1 << k) - 1, 1 << k, (1 << k) + 1)}
    page = plat.page_size
    return [b for b in page_edges(plat, up_to_pages) if div_ceil(b, page) in counts or b // page in counts]


def limits(plat: Platform) -> list[int]:
    edges = (plat.kmalloc_max_size, INT_MAX, ISIZE_MAX, USIZE_MAX - plat.page_size, USIZE_MAX)
    return [b for e in edges for b in (e - 1, e, e + 1) if 1 <= b <= USIZE_MAX]


# --- the functions compared -----------------------------------------------------


def kmalloc_physical(plat: Platform) -> Agreement:
    """ksize of a fresh kmalloc: the size classes below two pages, 2^order pages above, up to KMALLOC_MAX_SIZE."""
    page_limit = plat.kmalloc_max_size // plat.page_size
    return compare(
        Agreement("kmalloc_physical", plat.page_size),
        lambda n: (kv.kmalloc_physical(plat, n),),
        lambda n: (kvz.kmalloc_physical(plat, n),),
        (1, plat.kmalloc_max_cache_size),
        # Every page edge up to order 10; above, where the order changes (MAX_PAGE_ORDER 11 and 13 on arm64).
        [p for p in [*page_edges(plat, min(page_limit, 1024)), *order_edges(plat, page_limit)]
         if p <= plat.kmalloc_max_size],
    )


def vmalloc_physical(plat: Platform) -> Agreement:
    """The pages a vmalloc area maps, for every request up to the largest kvmalloc serves, and beyond."""
    return compare(
        Agreement("vmalloc_physical", plat.page_size),
        lambda n: (kv.vmalloc_physical(plat, n),),
        lambda n: (kvz.vmalloc_physical(plat, n),),
        (0, plat.kmalloc_max_cache_size),
        [p for p in [*page_edges(plat, 2048), *huge_edges(plat), *limits(plat)] if p <= _vmalloc_limit(plat)],
    )


def huge_edges(plat: Platform) -> list[int]:
    """One byte before, at and after the first multiples of each huge mapping size."""
    return [b for s in plat.huge_sizes for k in range(1, 5) for b in (k * s - 1, k * s, k * s + 1)]


def _vmalloc_limit(plat: Platform) -> int:
    """The largest request whose rounded area fits in a usize (the Z3 invariant's bound)."""
    return USIZE_MAX - max((plat.page_size, *plat.huge_sizes)) + 1


def kvmalloc(plat: Platform, outcome: Outcome) -> Agreement:
    """kvmalloc under one outcome: Ok?, vmalloc?, physical bytes, and the request recorded; its limits too."""

    def py(n: int) -> Value:
        a = kv.kvmalloc(plat, n, outcome, Recorder(1))
        return (False, False, 0, False) if a is None else (True, a.kind is Kind.VMALLOC, a.physical, a.requested == n)

    def sym(n: Any) -> tuple[Any, ...]:
        ok, a = kvz.kvmalloc(plat, z3.BoolVal(True), n, lift_outcome(outcome), SymRecorder(u64(1)))
        return ok, z3.And(ok, a.vmalloc), z3.If(ok, a.physical, u64(0)), z3.And(ok, a.requested == n)

    # Its sizes are kmalloc_physical's and vmalloc_physical's (compared page by page above); its
    # own logic is where it changes allocator: a page, the page orders, KMALLOC_MAX_SIZE, INT_MAX.
    points = [*order_edges(plat, 2 * (plat.kmalloc_max_size // plat.page_size)), *limits(plat)]
    name = f"kvmalloc ({outcome.describe()})"
    return compare(Agreement(name, plat.page_size), py, sym, (1, plat.kmalloc_max_cache_size), points)


def div_ceil_pages(plat: Platform) -> Agreement:
    return compare(
        Agreement("div_ceil by PAGE_SIZE", plat.page_size),
        lambda n: (div_ceil(n, plat.page_size),),
        lambda n: (kvz.div_ceil(n, plat.page_size),),
        (0, 2 * plat.page_size),
        [*page_edges(plat, 64), *limits(plat)],
    )


def allocation_well_formed(plat: Platform) -> Agreement:
    """What a live allocation must be, for requests and physical sizes at every boundary, valid or not."""
    result = Agreement("allocation well-formed", plat.page_size)
    requested, physical = z3.BitVec("requested", BITS), z3.BitVec("physical", BITS)
    vmalloc = z3.Bool("vmalloc")
    term = kvz.allocation_well_formed(plat, SymAlloc(z3.BoolVal(True), u64(1), vmalloc, requested, physical))
    classes = plat.size_classes()
    sizes = sorted(
        {0, *(c + d for c in classes for d in (-1, 0, 1)), *page_edges(plat, 4), *huge_edges(plat), *limits(plat)}
        | set(order_edges(plat, 2048))
    )
    for kind, r in itertools.product(Kind, sizes):
        candidates = {0, r, r + 1, r - 1, kv.kmalloc_physical(plat, max(r, 1)), kv.vmalloc_physical(plat, r)}
        candidates |= {c for c in classes if r // 2 <= c <= 2 * r + 8}
        for p in sorted(c for c in candidates if 0 <= c <= USIZE_MAX):
            result.values += 1
            py_ok = not kv.allocation_violations(plat, Allocation(1, kind, r, p))
            bound = (requested, u64(r)), (physical, u64(p)), (vmalloc, z3.BoolVal(kind is Kind.VMALLOC))
            sym_ok = z3.is_true(z3.simplify(z3.substitute(term, *bound)))
            if py_ok != sym_ok:
                result.disagreements.append(f"{kind.value} requested {r} physical {p}: Python {py_ok}, Z3 {sym_ok}")
    return result


def invariant_states(plat: Platform) -> Iterator[VecState]:
    """Valid and invalid states: each field at its boundaries, the buffer right, wrong or missing."""
    size = plat.elem_size
    max_len = ISIZE_MAX // size if size else USIZE_MAX
    layouts = sorted({0, 1, 2, 3, plat.page_size // max(size, 1) + 1, max_len, max_len + 1, USIZE_MAX} - {1 << BITS})
    for layout_len in layouts:
        nbytes = layout_len * size
        lens = sorted({0, 1, max(layout_len - 1, 0), layout_len, layout_len + 1, USIZE_MAX} - {USIZE_MAX + 1})
        bufs: list[Allocation | None] = [None]
        for r in {nbytes, nbytes + 1, max(nbytes - 1, 0), 1}:
            if 0 <= r <= USIZE_MAX:
                bufs += [
                    Allocation(1, Kind.KMALLOC, r, kv.kmalloc_physical(plat, max(r, 1)) if r <= 1 << 40 else r),
                    Allocation(1, Kind.KMALLOC, r, r),
                    Allocation(1, Kind.VMALLOC, r, kv.vmalloc_physical(plat, r) if r < _vmalloc_limit(plat) else r),
                    Allocation(1, Kind.VMALLOC, r, r),
                ]
        for length, buf, next_id in itertools.product(lens, bufs, (1, 2)):
            yield VecState(length, layout_len, buf, Elements.identities(length), next_id)


def type_invariants(plat: Platform) -> Agreement:
    """Z3's type_invariant and the Python model's invariant_violations, on every state of the grid."""
    result = Agreement(f"type invariants (T of {plat.elem_size} B)", plat.page_size)
    v = SymVec.fresh("v")
    term = type_invariant(SymPlatform(plat), v)
    for state in invariant_states(plat):
        result.values += 1
        py_ok = not state.invariant_violations(plat)
        b = state.buf
        bound = [(v.len, u64(state.len)), (v.layout_len, u64(state.layout_len)), (v.next_id, u64(state.next_id))]
        bound += [
            (v.buf.live, z3.BoolVal(b is not None)),
            (v.buf.id, u64(0 if b is None else b.id)),
            (v.buf.vmalloc, z3.BoolVal(b is not None and b.kind is Kind.VMALLOC)),
            (v.buf.requested, u64(0 if b is None else b.requested)),
            (v.buf.physical, u64(0 if b is None else b.physical)),
        ]
        sym_ok = z3.is_true(z3.simplify(z3.substitute(term, *bound)))
        if py_ok != sym_ok:
            broken = state.invariant_violations(plat)
            result.disagreements.append(f"{state}: Python {'valid' if py_ok else broken}, Z3 {sym_ok}")
    return result


def all_agreements(page_sizes: tuple[int, ...] | None = None) -> Iterator[Agreement]:
    """Every comparison, for each page size (by default the explorer's and the real ones)."""
    for page in AGREEMENT_PAGE_SIZES if page_sizes is None else page_sizes:
        plat = Platform(1, page)
        yield kmalloc_physical(plat)
        yield vmalloc_physical(plat)
        yield div_ceil_pages(plat)
        for outcome in ALL_OUTCOMES:
            yield kvmalloc(plat, outcome)
        yield allocation_well_formed(plat)
        for size in ELEM_SIZES:
            yield type_invariants(Platform(size, page))
    if page_sizes is None:
        # The presets no page size stands for: arm64 with 4 KiB pages, and huge vmalloc off.
        for preset in PRESETS.values():
            plat = preset.platform(1)
            if plat != Platform(1, preset.page_size):
                for compared in (kmalloc_physical, vmalloc_physical, allocation_well_formed):
                    found = compared(plat)
                    found.name += f" on {preset.name}"
                    yield found
