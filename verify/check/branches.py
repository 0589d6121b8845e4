"""Which branches and boundaries of the models a cross-check run reached.

A slip in one encoding that shows only at a branch or a boundary is found by the
stateful cross-check only if a step goes there. Each step of the Python model is
classified, from what it did (its pre-state, action, effects and result), into
the branches of shrink_to, reserve, the allocators and the binder policies it
took and the boundaries it sat on: a shrink target one byte past a page
multiple, an allocation request at a size-class edge, len at a policy trigger's
edge. `verify crosscheck` prints the count of each and names those never reached;
the test suite requires every one within its budget.

Requests and targets are whole elements, so for a T of s bytes "at" an edge E is
the largest request not past it (E - s < n <= E) and "one past" the smallest past
it (E < n <= E + s): for u8, exactly E and E + 1. vrealloc keeping an area is
not listed: it cannot happen to a Vec (a vmalloc area is above a page, and
growth at least doubles the capacity, which the area's last page cannot hold).
"""

from __future__ import annotations

from models.allocator import Fn, Kind
from models.binder import POLICIES, BinderStep, Deregister, Policy, Register
from models.machine import INT_MAX, Platform, kmalloc_size_classes
from models.vec import Push, Reserve, ShrinkTo, Step

SHRINK_BRANCHES = (
    "shrink_to: zero-sized T, nothing done",
    "shrink_to: nothing to shrink",
    "shrink_to: kmalloc buffer, krealloc keeps the object",
    "shrink_to: kmalloc buffer freed (target 0)",
    "shrink_to: vmalloc buffer, no page freed",
    "shrink_to: vmalloc buffer freed (target 0)",
    "shrink_to: vmalloc buffer replaced by a kmalloc object",
    "shrink_to: vmalloc buffer replaced by a vmalloc area",
    "shrink_to: vmalloc buffer, the replacement fails (Err)",
)
RESERVE_BRANCHES = (
    "reserve: room enough, no call",
    "reserve: zero-sized T cannot grow",
    "reserve: len + additional overflows",
    "reserve: the layout exceeds isize::MAX",
    "reserve: the allocation fails (Err)",
)
ALLOCATOR_BRANCHES = (
    "kmalloc: a slab size class",
    "kmalloc: 2^order pages",
    "kvmalloc: kmalloc fails, vmalloc serves",
    "kvmalloc: above KMALLOC_MAX_SIZE, vmalloc serves",
    "kvmalloc: a page or less, no vmalloc fallback",
    "kvmalloc: above INT_MAX, refused",
    "krealloc: the object kept (fits in ksize)",
    "krealloc: the object moved",
    "kvrealloc: krealloc fails, moved by kvmalloc to vmalloc",
    "vrealloc: the area moved",
    "realloc to 0 frees",
)
VEC_BOUNDARIES = (
    "boundary: shrink_to a vmalloc buffer to exactly a page multiple",
    "boundary: shrink_to a vmalloc buffer to one byte past a page multiple",
    "boundary: shrink_to with capacity equal to the target",
    "boundary: a request at a size class",
    "boundary: a request one byte past a size class",
    "boundary: a request of exactly a page",
    "boundary: a request one byte past a page",
    "boundary: a request at KMALLOC_MAX_SIZE",
    "boundary: a request one byte past KMALLOC_MAX_SIZE",
)
VEC_POINTS = SHRINK_BRANCHES + RESERVE_BRANCHES + ALLOCATOR_BRANCHES + VEC_BOUNDARIES


def _policy_points(p: Policy) -> tuple[str, ...]:
    if p.name == "never":
        return (f"binder {p.name}: deregistration, no shrink",)
    return (
        f"binder {p.name}: deregistration, no shrink",
        f"binder {p.name}: shrink Ok",
        f"binder {p.name}: shrink Err",
        f"binder {p.name}: len at the trigger's edge, fires",
        f"binder {p.name}: len at the trigger's edge, does not fire",
    )


BINDER_POINTS = (
    "binder: registration without reallocation",
    "binder: registration reallocates",
    "binder: registration fails",
    *(point for p in POLICIES for point in _policy_points(p)),
)


def vec_points(plat: Platform, s: Step) -> set[str]:
    """The branches and boundaries one Vec step took."""
    points = _allocator_points(plat, s)
    if isinstance(s.action, ShrinkTo):
        points |= _shrink_points(plat, s, s.action)
    elif isinstance(s.action, (Reserve, Push)):
        points |= _reserve_points(plat, s, 1 if isinstance(s.action, Push) else s.action.additional)
    return points


def _shrink_points(plat: Platform, s: Step, a: ShrinkTo) -> set[str]:
    pre, size, page = s.pre, plat.elem_size, plat.page_size
    target = max(pre.len, a.min_capacity)
    cap = pre.capacity(plat)
    points = set()
    if size and cap == target:
        points.add("boundary: shrink_to with capacity equal to the target")
    if size and cap > target and pre.buf is not None and pre.buf.kind is Kind.VMALLOC and target * size >= page:
        if target * size % page == 0:
            points.add("boundary: shrink_to a vmalloc buffer to exactly a page multiple")
        if 0 < target * size % page <= size:
            points.add("boundary: shrink_to a vmalloc buffer to one byte past a page multiple")
    if size == 0:
        return points | {"shrink_to: zero-sized T, nothing done"}
    if cap <= target or pre.buf is None:
        return points | {"shrink_to: nothing to shrink"}
    new = s.post.buf
    if pre.buf.kind is Kind.KMALLOC:
        freed = target == 0
        return points | {f"shrink_to: kmalloc buffer{' freed (target 0)' if freed else ', krealloc keeps the object'}"}
    if not s.effects.calls:
        return points | {"shrink_to: vmalloc buffer, no page freed"}
    if target == 0:
        return points | {"shrink_to: vmalloc buffer freed (target 0)"}
    if not s.ok or new is None:
        return points | {"shrink_to: vmalloc buffer, the replacement fails (Err)"}
    kind = "a kmalloc object" if new.kind is Kind.KMALLOC else "a vmalloc area"
    return points | {f"shrink_to: vmalloc buffer replaced by {kind}"}


def _reserve_points(plat: Platform, s: Step, additional: int) -> set[str]:
    pre = s.pre
    if pre.capacity(plat) - pre.len >= additional:
        return {"reserve: room enough, no call"}
    if plat.elem_size == 0:
        return {"reserve: zero-sized T cannot grow"}
    if not s.effects.calls:
        if pre.len + additional >= 1 << 64:
            return {"reserve: len + additional overflows"}
        return {"reserve: the layout exceeds isize::MAX"}
    return set() if s.ok else {"reserve: the allocation fails (Err)"}


def _allocator_points(plat: Platform, s: Step) -> set[str]:
    fx, page, size = s.effects, plat.page_size, max(plat.elem_size, 1)
    outcome = getattr(s.action, "outcome", None)
    points = set()
    classes = kmalloc_size_classes(page)
    for call in fx.calls:
        n = call.new_bytes
        if n == 0:
            continue
        if any(c - size < n <= c for c in classes):
            points.add("boundary: a request at a size class")
        if any(c < n <= c + size for c in classes):
            points.add("boundary: a request one byte past a size class")
        if page - size < n <= page:
            points.add("boundary: a request of exactly a page")
        if page < n <= page + size:
            points.add("boundary: a request one byte past a page")
        if plat.kmalloc_max_size - size < n <= plat.kmalloc_max_size:
            points.add("boundary: a request at KMALLOC_MAX_SIZE")
        if plat.kmalloc_max_size < n <= plat.kmalloc_max_size + size:
            points.add("boundary: a request one byte past KMALLOC_MAX_SIZE")
    new = fx.allocated
    if new is not None and new.kind is Kind.KMALLOC:
        points.add(f"kmalloc: {'a slab size class' if new.physical <= 2 * page else '2^order pages'}")
    if new is not None and new.kind is Kind.VMALLOC and outcome is not None:
        why = "kmalloc fails" if not outcome.kmalloc_ok else "above KMALLOC_MAX_SIZE"
        points.add(f"kvmalloc: {why}, vmalloc serves")
    # A failed call that vmalloc would have served: kvmalloc refused to fall back.
    failed = [c.new_bytes for c in fx.calls if c.new_bytes] if not s.ok and new is None else []
    refused = bool(failed) and outcome is not None and outcome.vmalloc_ok
    if refused and outcome is not None and not outcome.kmalloc_ok and failed[-1] <= page:
        points.add("kvmalloc: a page or less, no vmalloc fallback")
    if refused and failed[-1] > INT_MAX and (s.pre.buf is None or s.pre.buf.kind is Kind.KMALLOC):
        points.add("kvmalloc: above INT_MAX, refused")
    old = s.pre.buf
    reallocs = [c for c in fx.calls if c.fn is Fn.REALLOC and c.new_bytes and c.old_bytes]
    if old is not None and reallocs and s.ok:
        kept = s.post.buf is not None and s.post.buf.id == old.id
        if old.kind is Kind.KMALLOC:
            if kept:
                points.add("krealloc: the object kept (fits in ksize)")
            elif new is not None:
                points.add("krealloc: the object moved" if new.kind is Kind.KMALLOC
                           else "kvrealloc: krealloc fails, moved by kvmalloc to vmalloc")
        elif not kept:
            points.add("vrealloc: the area moved")
    if fx.freed is not None and any(c.new_bytes == 0 for c in fx.calls):
        points.add("realloc to 0 frees")
    return points


def binder_points(plat: Platform, policy: Policy, s: BinderStep) -> set[str]:
    """The branches and boundaries one binder operation took (its Vec steps' too)."""
    points: set[str] = set()
    if isinstance(s.action, Register):
        if not s.ok:
            points.add("binder: registration fails")
        else:
            points.add(f"binder: registration {'reallocates' if s.reallocates else 'without reallocation'}")
        return points
    assert isinstance(s.action, Deregister)
    after = s.steps[0].post
    n, cap = after.len, after.capacity(plat)
    if policy.name != "never":
        if policy.trigger(n, cap) and not policy.trigger(n + 1, cap):
            points.add(f"binder {policy.name}: len at the trigger's edge, fires")
        if n > 0 and not policy.trigger(n, cap) and policy.trigger(n - 1, cap):
            points.add(f"binder {policy.name}: len at the trigger's edge, does not fire")
    if not s.shrink_attempted:
        points.add(f"binder {policy.name}: deregistration, no shrink")
    else:
        points.add(f"binder {policy.name}: shrink {'Ok' if s.steps[-1].ok else 'Err'}")
    return points
