"""Reference model of `Vec<T, KVmalloc>` (rust/kernel/alloc/kvec.rs), v6 of the shrink_to series.

A state is an immutable `VecState`; `step` is a pure function from a state and
an action (which carries every allocator outcome) to a `Step`. The Z3 encoding
of the same transitions is vec_z3.py; the two are meant to be read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models import allocator as kv
from models.allocator import Allocation, Effects, Fn, Kind, Outcome, Recorder
from models.elements import GARBAGE, Elements
from models.faults import DecisionPoints, Override
from models.machine import ISIZE_MAX, USIZE_MAX, Platform, div_ceil, wrap

SUCCESS = Outcome()


@dataclass(frozen=True)
class VecState:
    """len, the layout (an element count), the allocation behind the pointer and the elements."""

    len: int = 0
    layout_len: int = 0
    buf: Allocation | None = None  # None: the pointer is dangling
    elems: Elements = Elements()
    next_id: int = 1  # identity the allocator gives its next allocation

    def capacity(self, plat: Platform) -> int:
        # `Vec::capacity`: usize::MAX for a zero-sized T, else the layout's length.
        return USIZE_MAX if plat.elem_size == 0 else self.layout_len

    def layout_bytes(self, plat: Platform) -> int:
        return self.layout_len * plat.elem_size

    def physical(self) -> int:
        """Bytes of memory the vector holds."""
        return 0 if self.buf is None else self.buf.physical

    def invariant_violations(self, plat: Platform) -> list[str]:
        """The type invariants of kvec.rs and of the allocation, as broken clauses."""
        broken = []
        size = plat.elem_size
        if not self.len <= self.capacity(plat):
            broken.append("len <= capacity")
        if self.layout_bytes(plat) > ISIZE_MAX:
            broken.append("layout bytes <= isize::MAX")
        if size == 0 and self.layout_len != 0:
            broken.append("zero-sized T has an empty layout")
        if (self.buf is None) != (self.layout_bytes(plat) == 0):
            broken.append("dangling exactly when the layout is empty")
        if self.buf is not None and self.buf.requested != self.layout_bytes(plat):
            broken.append("allocation size equals layout size")
        if self.elems.count != self.len:
            broken.append("one identity per element")
        if self.buf is not None:
            broken += kv.allocation_violations(plat, self.buf)
            if self.buf.id >= self.next_id:
                broken.append("allocation ids are below next_id")
        return broken


@dataclass(frozen=True)
class ShrinkTo:
    min_capacity: int
    outcome: Outcome = Outcome()


@dataclass(frozen=True)
class Reserve:
    additional: int
    outcome: Outcome = Outcome()


@dataclass(frozen=True)
class Push:
    identity: int
    outcome: Outcome = Outcome()


@dataclass(frozen=True)
class Pop:
    pass


@dataclass(frozen=True)
class Truncate:
    len: int


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class Retain:
    """`retain(|e| e != drop)`: keep every element but the one with this identity."""

    drop: int


Action = ShrinkTo | Reserve | Push | Pop | Truncate | Clear | Retain


@dataclass(frozen=True)
class Step:
    pre: VecState
    action: Action
    post: VecState
    ok: bool
    effects: Effects
    overflow: bool  # some arithmetic wrapped around


def step(plat: Platform, state: VecState, action: Action, faults: frozenset[str] = frozenset()) -> Step:
    """Apply one operation; the only function of this module with outside callers besides `with_capacity`."""
    rec = Recorder(state.next_id, faults=faults)
    if isinstance(action, ShrinkTo):
        shrink = generic_shrink_to if plat.code.generic else shrink_to
        ok, post = shrink(plat, state, action.min_capacity, action.outcome, rec, faults)
    elif isinstance(action, Reserve):
        ok, post = reserve(plat, state, action.additional, action.outcome, rec)
    elif isinstance(action, Push):
        ok, post = push(plat, state, action.identity, action.outcome, rec, faults)
    elif isinstance(action, Pop):
        ok, post = True, _truncated(state, state.len - 1) if state.len else state
    elif isinstance(action, Truncate):
        ok, post = True, _truncated(state, action.len)
    elif isinstance(action, Clear):
        ok, post = True, _truncated(state, 0)
    elif isinstance(action, Retain):
        ok, post = True, retain(state, action.drop, faults)
    else:
        raise TypeError(f"not an action: {action!r}")
    return Step(state, action, replace(post, next_id=rec.next_id), ok, rec.effects(), rec.overflow)


def with_capacity(plat: Platform, capacity: int, outcome: Outcome = SUCCESS) -> Step:
    """`Vec::with_capacity`: `Vec::new()` followed by `reserve(capacity)`."""
    return step(plat, VecState(), Reserve(capacity, outcome))


# The decision points of push and retain and the seeded faults that override them
# (models/faults.py); vec_z3.PUSH_OVERRIDES and RETAIN_OVERRIDES are their counterparts.
PUSH_OVERRIDES: dict[str, tuple[str, Override]] = {
    "vec-in-binder-failed-push-drops-last": (
        "state after failed reserve",
        lambda plat, kernel, v: _truncated(v, v.len - 1) if v.len > 0 else kernel(),
    ),
    "vec-in-binder-push-stale-request": (
        "buffer after reserve",
        lambda plat, kernel, v, grown: _stale_request(plat, v, grown) if grown.layout_len != v.layout_len else kernel(),
    ),
}

RETAIN_OVERRIDES: dict[str, tuple[str, Override]] = {
    "vec-in-binder-retain-drops-next": ("removal", lambda plat, kernel, elems, drop: _drop_next(elems, drop)),
}


def push(
    plat: Platform, v: VecState, identity: int, outcome: Outcome, rec: Recorder, faults: frozenset[str] = frozenset()
) -> tuple[bool, VecState]:
    """`Vec::push`: reserve room for one more element (Err leaves everything unchanged), then write it at len."""
    at = DecisionPoints(faults, PUSH_OVERRIDES, plat)
    ok, grown = reserve(plat, v, 1, outcome, rec)
    if not ok:
        return False, at("state after failed reserve", lambda v: v, v)
    grown = replace(grown, buf=at("buffer after reserve", lambda v, grown: grown.buf, v, grown))
    return True, replace(grown, len=grown.len + 1, elems=grown.elems.push(identity))


def retain(v: VecState, drop: int, faults: frozenset[str] = frozenset()) -> VecState:
    """`retain(|e| e != drop)`: remove that one element, keeping the others in order; the buffer stays."""
    at = DecisionPoints(faults, RETAIN_OVERRIDES, None)
    elems = at("removal", lambda elems, drop: elems.without(drop), v.elems, drop)
    return replace(v, len=elems.count, elems=elems)


def _stale_request(plat: Platform, v: VecState, grown: VecState) -> Allocation | None:
    """The grown buffer, recorded as if it had been allocated with v's old size."""
    return None if grown.buf is None else replace(grown.buf, requested=v.layout_bytes(plat))


def _drop_next(elems: Elements, drop: int) -> Elements:
    """The elements without `drop` and without the one after it, when there is one."""
    kept = elems.without(drop)
    if kept.count == elems.count:
        return kept
    at = _index_of(elems, drop)  # the dropped one's neighbour now stands here
    return kept.prefix(at).concat(_suffix(kept, at + 1)) if at < kept.count else kept


def _index_of(elems: Elements, identity: int) -> int:
    """Where `identity` stands (it must be present)."""
    index = 0
    for first, count in elems.runs:
        if first != GARBAGE and first <= identity < first + count:
            return index + identity - first
        index += count
    raise ValueError(identity)


def _suffix(elems: Elements, start: int) -> Elements:
    """The elements from index `start` on."""
    rest = Elements()
    for first, count in elems.runs:
        skip = min(start, count)
        start -= skip
        if count > skip:
            rest = rest.concat(Elements(((first if first == GARBAGE else first + skip, count - skip),)))
    return rest


def _truncated(state: VecState, new_len: int) -> VecState:
    # Removing elements never touches the allocation.
    if new_len >= state.len:
        return state
    return replace(state, len=new_len, elems=state.elems.prefix(new_len))


def _carried(old: VecState, new_buf: Allocation | None, rec: Recorder, plat: Platform) -> Elements:
    """The elements as they stand in `new_buf`: what was copied there, garbage elsewhere."""
    if old.buf is None or (new_buf is not None and new_buf.id == old.buf.id) or old.len == 0:
        return old.elems
    copied = 0
    if rec.copied is not None and new_buf is not None and rec.copied.dst == new_buf.id:
        copied = min(old.len, rec.copied.nbytes // plat.elem_size)
    return old.elems.prefix(copied).concat(Elements.garbage(old.len - copied))


def _mul(rec: Recorder, a: int, b: int) -> int:
    """usize multiplication as the machine does it; a wrap-around is recorded."""
    if a * b > USIZE_MAX:
        rec.overflow = True
    return wrap(a * b)


def reserve(plat: Platform, v: VecState, additional: int, outcome: Outcome, rec: Recorder) -> tuple[bool, VecState]:
    """`Vec::reserve`: grow to max(2 * capacity, len + additional) when the spare room is short."""
    cap = v.capacity(plat)
    # usize subtraction, as the machine does it (it wraps only if len > capacity).
    if wrap(cap - v.len) >= additional:
        return True, v
    if plat.elem_size == 0:
        return False, v  # a zero-sized T cannot have more than usize::MAX elements
    if v.len + additional > USIZE_MAX:
        return False, v  # len.checked_add(additional) is None
    new_cap = max(cap * 2, v.len + additional)  # cap <= isize::MAX, so cap * 2 fits
    if new_cap * plat.elem_size > ISIZE_MAX:
        return False, v  # ArrayLayout::new fails
    ok, buf = kv.realloc(plat, Fn.REALLOC, v.buf, new_cap * plat.elem_size, v.layout_bytes(plat), outcome, rec)
    if not ok:
        return False, v
    return True, replace(v, layout_len=new_cap, buf=buf, elems=_carried(v, buf, rec, plat))


# shrink_to's decision points and the seeded faults that override them
# (models/faults.py); vec_z3.SHRINK_OVERRIDES overrides the same points in Z3 terms.
# Each override gets (rec, the value without the fault, *the point's inputs).
SHRINK_OVERRIDES: dict[str, tuple[str, Override]] = {
    "always-noop": ("runs", lambda rec, kernel: False),
    "target-ignores-len": ("target", lambda rec, kernel, len_, min_capacity: min_capacity),
    "target-ignores-min-capacity": ("target", lambda rec, kernel, len_, min_capacity: len_),
    "target-min": ("target", lambda rec, kernel, len_, min_capacity: min(len_, min_capacity)),
    "target-doubled-unchecked": ("target", lambda rec, kernel, len_, min_capacity: _mul(rec, kernel(), 2)),
    "noop-check-dropped": ("nothing to shrink", lambda rec, kernel, capacity, target: False),
    "noop-path-reallocs": ("realloc with nothing to shrink", lambda rec, kernel, buf: buf is not None),
    "zst-check-dropped": ("zero-sized T", lambda rec, kernel, size: False),
    "vmalloc-test-inverted": ("not vmalloc", lambda rec, kernel, buf: buf is None or buf.kind is Kind.VMALLOC),
    "kmalloc-deep-copy": ("not vmalloc", lambda rec, kernel, buf: False),
    "pages-floor": ("pages", lambda rec, kernel, nbytes, page_size: nbytes // page_size),
    "page-rule-off-by-one": ("no page freed", lambda rec, kernel, current, target: current < target),
    "target-zero-skipped": ("free at target 0", lambda rec, kernel: False),
    "layout-updated-on-err": ("state after failed alloc", lambda rec, kernel, v, target: replace(v, layout_len=target)),
    "copy-one-short": ("copied len", lambda rec, kernel, len_: len_ - 1 if len_ > 0 else len_),
    "copy-one-too-long": ("copied len", lambda rec, kernel, len_: len_ + 1),
    "free-with-new-layout": ("free layout", lambda rec, kernel, old_bytes, new_bytes: new_bytes),
    # A later override of one point wins over an earlier one that ignores the value before it.
    "old-buffer-leaked": ("copy then free", lambda rec, kernel, copy, free: (copy,)),
    "free-before-copy": ("copy then free", lambda rec, kernel, copy, free: (free, copy)),
}


def shrink_to(
    plat: Platform,
    v: VecState,
    min_capacity: int,
    outcome: Outcome,
    rec: Recorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[bool, VecState]:
    """`Vec<T, KVmalloc>::shrink_to(min_capacity)` (kvec.rs, v6 as merged for v7.1), step for step.

    `at(point, rule, *inputs)` is the kernel's rule at a named decision point,
    unless a seeded fault overrides it (SHRINK_OVERRIDES above).
    """
    at = DecisionPoints(faults, SHRINK_OVERRIDES, rec)
    size = plat.elem_size
    if not at("runs", lambda: True):
        return True, v

    # target_cap = max(len, min_capacity).
    target = at("target", max, v.len, min_capacity)

    # Capacity already at or below the target: Ok, nothing changes.
    if at("nothing to shrink", lambda capacity, target: capacity <= target, v.capacity(plat), target):
        if at("realloc with nothing to shrink", lambda buf: False, v.buf):
            kv.realloc(plat, Fn.REALLOC, v.buf, v.layout_bytes(plat), v.layout_bytes(plat), outcome, rec)
        return True, v
    # A zero-sized T never allocates (its capacity is usize::MAX): Ok, nothing changes.
    if at("zero-sized T", lambda size: size == 0, size):
        return True, v

    new_bytes = _mul(rec, target, size)
    old_bytes = v.layout_bytes(plat)

    # !is_vmalloc_addr(ptr): a kmalloc buffer (or, under a fault, a dangling
    # pointer) goes to KVmalloc::realloc, which lets krealloc decide; Err leaves it all unchanged.
    if at("not vmalloc", lambda buf: buf is None or buf.kind is Kind.KMALLOC, v.buf):
        ok, buf = kv.realloc(plat, Fn.REALLOC, v.buf, new_bytes, old_bytes, outcome, rec)
        if not ok:
            return False, v
        return True, replace(v, layout_len=target, buf=buf, elems=_carried(v, buf, rec, plat))
    old = v.buf
    assert old is not None

    # A vmalloc buffer is replaced only if that frees at least one page, since
    # vrealloc cannot yet shrink in place (the TODO in kvec.rs).
    current_pages = at("pages", div_ceil, _mul(rec, v.capacity(plat), size), plat.page_size)
    target_pages = at("pages", div_ceil, new_bytes, plat.page_size)
    if at("no page freed", lambda current, target: current <= target, current_pages, target_pages):
        return True, v

    # target_cap == 0: free the buffer with its layout; the vector is left dangling, with an empty layout.
    if target == 0:
        if not at("free at target 0", lambda: True):
            return True, v
        kv.realloc(plat, Fn.FREE, v.buf, 0, old_bytes, outcome, rec)
        return True, replace(v, layout_len=0, buf=None)

    # KVmalloc::alloc a buffer of target_cap elements; Err leaves everything unchanged.
    ok, new = kv.realloc(plat, Fn.ALLOC, None, new_bytes, 0, outcome, rec)
    if not ok or new is None:
        return False, at("state after failed alloc", lambda v, target: v, v, target)
    # Copy the len elements across, then free the old buffer with its own layout.
    copied_len = at("copied len", lambda len_: len_, v.len)
    free_bytes = at("free layout", lambda old_bytes, new_bytes: old_bytes, old_bytes, new_bytes)

    def copy_elements() -> None:
        rec.copy(old, new, copied_len * size)

    def free_old_buffer() -> None:
        kv.realloc(plat, Fn.FREE, old, 0, free_bytes, outcome, rec)

    for do in at("copy then free", lambda copy, free: (copy, free), copy_elements, free_old_buffer):
        do()
    return True, replace(v, layout_len=target, buf=new, elems=_carried(v, new, rec, plat))


# The generic shrink_to's decision points and the seeded faults that override them
# (models/faults.py); vec_z3.GENERIC_SHRINK_OVERRIDES is their Z3 counterpart.
GENERIC_SHRINK_OVERRIDES: dict[str, tuple[str, Override]] = {
    "generic-noop-check-dropped": ("nothing to shrink", lambda rec, kernel, capacity, target: False),
    "generic-layout-kept": ("layout after realloc", lambda rec, kernel, old_len, target: old_len),
}


def generic_shrink_to(
    plat: Platform,
    v: VecState,
    min_capacity: int,
    outcome: Outcome,
    rec: Recorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[bool, VecState]:
    """The generic `Vec<T, A>::shrink_to(min_capacity)` the TODO in kvec.rs (v7.1) asks for; not in any kernel.

    As the TODO describes it and ../shared/SEMANTICS.md states it: the target and
    the no-op rule of v6, then one `A::realloc` from the current layout to the
    target's, as `reserve` calls it to grow. `A` is the model's allocator
    (KernelCode.allocator: KVmalloc, Kmalloc or Vmalloc); a target of 0 reallocs
    to size 0, which frees the buffer and leaves the pointer dangling.
    """
    at = DecisionPoints(faults, GENERIC_SHRINK_OVERRIDES, rec)
    # target_cap = max(len, min_capacity); capacity already at or below it: Ok, nothing changes.
    target = max(v.len, min_capacity)
    if at("nothing to shrink", lambda capacity, target: capacity <= target, v.capacity(plat), target):
        return True, v
    # A zero-sized T never allocates (its layout stays empty): Ok, nothing changes, as in v6.
    if plat.elem_size == 0:
        return True, v
    # A::realloc(ptr, layout of target_cap elements, current layout); Err leaves everything unchanged.
    new_bytes = _mul(rec, target, plat.elem_size)
    ok, buf = kv.realloc(plat, Fn.REALLOC, v.buf, new_bytes, v.layout_bytes(plat), outcome, rec)
    if not ok:
        return False, v
    layout_len = at("layout after realloc", lambda old_len, target: target, v.layout_len, target)
    return True, replace(v, layout_len=layout_len, buf=buf, elems=_carried(v, buf, rec, plat))
