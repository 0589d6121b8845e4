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
        ok, post = shrink_to(plat, state, action.min_capacity, action.outcome, rec, faults)
    elif isinstance(action, Reserve):
        ok, post = reserve(plat, state, action.additional, action.outcome, rec)
    elif isinstance(action, Push):
        ok, post = reserve(plat, state, 1, action.outcome, rec)
        if ok:
            post = replace(post, len=post.len + 1, elems=post.elems.push(action.identity))
        post = _push_faults(plat, state, ok, post, faults)
    elif isinstance(action, Pop):
        ok, post = True, _truncated(state, state.len - 1) if state.len else state
    elif isinstance(action, Truncate):
        ok, post = True, _truncated(state, action.len)
    elif isinstance(action, Clear):
        ok, post = True, _truncated(state, 0)
    elif isinstance(action, Retain):
        elems = state.elems.without(action.drop)
        if "vec-in-binder-retain-drops-next" in faults and elems.count < state.elems.count:
            at = _index_of(state.elems, action.drop)  # the dropped one's neighbour now stands here
            elems = elems.prefix(at).concat(_suffix(elems, at + 1)) if at < elems.count else elems
        ok, post = True, replace(state, len=elems.count, elems=elems)
    else:
        raise TypeError(f"not an action: {action!r}")
    return Step(state, action, replace(post, next_id=rec.next_id), ok, rec.effects(), rec.overflow)


def with_capacity(plat: Platform, capacity: int, outcome: Outcome = SUCCESS) -> Step:
    """`Vec::with_capacity`: `Vec::new()` followed by `reserve(capacity)`."""
    return step(plat, VecState(), Reserve(capacity, outcome))


def _push_faults(plat: Platform, pre: VecState, ok: bool, post: VecState, faults: frozenset[str]) -> VecState:
    """The seeded push faults (models/faults.py); the counterpart of vec_z3._push_faults."""
    if "vec-in-binder-failed-push-drops-last" in faults and not ok and pre.len > 0:
        post = _truncated(pre, pre.len - 1)
    grew = ok and post.layout_len != pre.layout_len and post.buf is not None
    if "vec-in-binder-push-stale-request" in faults and grew:
        assert post.buf is not None
        post = replace(post, buf=replace(post.buf, requested=pre.layout_bytes(plat)))
    return post


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


def shrink_to(
    plat: Platform,
    v: VecState,
    min_capacity: int,
    outcome: Outcome,
    rec: Recorder,
    faults: frozenset[str] = frozenset(),
) -> tuple[bool, VecState]:
    """`Vec<T, KVmalloc>::shrink_to(min_capacity)`, v6, branch for branch."""
    size = plat.elem_size
    if "always-noop" in faults:
        return True, v
    target = max(v.len, min_capacity)
    if "target-ignores-len" in faults:
        target = min_capacity
    if "target-ignores-min-capacity" in faults:
        target = v.len
    if "target-min" in faults:
        target = min(v.len, min_capacity)
    if "target-doubled-unchecked" in faults:
        target = _mul(rec, target, 2)

    # Nothing to do when the capacity is already at or below the target.
    if v.capacity(plat) <= target and "noop-check-dropped" not in faults:
        if "noop-path-reallocs" in faults and v.buf is not None:
            kv.realloc(plat, Fn.REALLOC, v.buf, v.layout_bytes(plat), v.layout_bytes(plat), outcome, rec)
        return True, v
    # A zero-sized T never allocates; its capacity is usize::MAX.
    if size == 0 and "zst-check-dropped" not in faults:
        return True, v

    new_bytes = _mul(rec, target, size)
    old_bytes = v.layout_bytes(plat)

    # !is_vmalloc_addr(ptr): a kmalloc buffer (or, with the faults above, a
    # dangling pointer) delegates to KVmalloc::realloc and lets krealloc decide.
    on_kmalloc = v.buf is None or (v.buf.kind is Kind.KMALLOC) != ("vmalloc-test-inverted" in faults)
    if on_kmalloc and "kmalloc-deep-copy" not in faults:
        ok, buf = kv.realloc(plat, Fn.REALLOC, v.buf, new_bytes, old_bytes, outcome, rec)
        if not ok:
            return False, v
        return True, replace(v, layout_len=target, buf=buf, elems=_carried(v, buf, rec, plat))
    assert v.buf is not None

    # vmalloc buffer: replace it only if at least one page is freed, since
    # vrealloc cannot yet shrink in place (the TODO in kvec.rs).
    pages = (lambda n, d: n // d) if "pages-floor" in faults else div_ceil
    current_pages = pages(_mul(rec, v.capacity(plat), size), plat.page_size)
    target_pages = pages(new_bytes, plat.page_size)
    no_page_freed = current_pages < target_pages if "page-rule-off-by-one" in faults else current_pages <= target_pages
    if no_page_freed:
        return True, v

    # target == 0: free the buffer; the vector becomes empty and dangling.
    if target == 0 and "target-zero-skipped" not in faults:
        kv.realloc(plat, Fn.FREE, v.buf, 0, old_bytes, outcome, rec)
        return True, replace(v, layout_len=0, buf=None)
    if target == 0:
        return True, v

    # Deep copy: alloc the target layout, copy len elements, free the old buffer.
    ok, new = kv.realloc(plat, Fn.ALLOC, None, new_bytes, 0, outcome, rec)
    if not ok or new is None:
        if "layout-updated-on-err" in faults:
            return False, replace(v, layout_len=target)
        return False, v
    copied_len = v.len - 1 if "copy-one-short" in faults and v.len > 0 else v.len
    if "copy-one-too-long" in faults:
        copied_len = v.len + 1
    free_bytes = new_bytes if "free-with-new-layout" in faults else old_bytes
    if "free-before-copy" in faults:
        kv.realloc(plat, Fn.FREE, v.buf, 0, free_bytes, outcome, rec)
        rec.copy(v.buf, new, copied_len * size)
    elif "old-buffer-leaked" in faults:
        rec.copy(v.buf, new, copied_len * size)
    else:
        rec.copy(v.buf, new, copied_len * size)
        kv.realloc(plat, Fn.FREE, v.buf, 0, free_bytes, outcome, rec)
    return True, replace(v, layout_len=target, buf=new, elems=_carried(v, new, rec, plat))
