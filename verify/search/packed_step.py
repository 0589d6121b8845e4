"""The binder step on one packed state, compiled (numba): the rules of packed.py's explorer, state by state.

A state is (len, layout, kind, physical) with the request equal to the
layout's bytes; an action is a registration or a deregistration under one
allocator outcome (kmalloc ok?, vmalloc ok?). Each function mirrors its
Python model counterpart (models/vec.py, models/allocator.py, models/binder.py)
branch by branch; tests/test_packed.py holds the explored graph to the
reference explorer's, which calls that model, edge for edge.

This module is imported only when a graph is explored: numba takes half a
second to import, which a command without an exploration should not pay.
`cache=True` keeps the machine code in __pycache__ (or numba's user cache
directory where that is read-only), so only the first run after a change
compiles: https://numba.readthedocs.io/en/stable/user/jit.html#cache
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

from models.binder import ELEM_SIZE

NONE, KMALLOC, VMALLOC = 0, 1, 2  # the buffer's kind; NONE: dangling
FLAG_OK, FLAG_ATTEMPTED, FLAG_SHRINK_OK, FLAG_FRESH = 1, 2, 4, 8  # FRESH: a new allocation replaced a live one
CALLS_SHIFT = 4

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """numba's nopython compilation, machine code cached on disk; the function keeps its signature for mypy."""
    return cast(F, numba.njit(cache=True)(fn))


# `sizes`: the allocator's sizes indexed by a request's element count, as packed.allocator_sizes makes them.
@compiled
def kvmalloc(sizes: Any, n: int, km_ok: bool, vm_ok: bool) -> tuple[bool, int, int]:
    """kvmalloc of n elements: kmalloc first, vmalloc above a page. (Ok?, kind, physical); a success is new."""
    kmalloc, vmalloc_huge, _, kmalloc_fits, vmalloc_allowed = sizes
    if kmalloc_fits[n] and km_ok:
        return True, KMALLOC, kmalloc[n]
    if vmalloc_allowed[n] and vm_ok:
        return True, VMALLOC, vmalloc_huge[n]
    return False, NONE, 0


@compiled
def kvrealloc(sizes: Any, kind: int, physical: int, n: int, km_ok: bool, vm_ok: bool) -> tuple[bool, int, int, bool]:
    """kvrealloc of the buffer (kind NONE: NULL) to n > 0 elements: in place when it fits, else a new one.

    (Ok?, kind, physical, a new allocation?); on failure the buffer is left as it was.
    """
    kmalloc, _, vmalloc_pages, kmalloc_fits, _ = sizes
    if kind != NONE and n * ELEM_SIZE <= physical:
        return True, kind, physical, False
    if kind == VMALLOC:  # vrealloc: a new area of small pages
        if vm_ok:
            return True, VMALLOC, vmalloc_pages[n], True
        return False, kind, physical, False
    if kind == KMALLOC and kmalloc_fits[n] and km_ok:  # krealloc's own kmalloc
        return True, KMALLOC, kmalloc[n], True
    # NULL, and krealloc's fallback (its kmalloc fails the same way): a fresh kvmalloc.
    ok, new_kind, new_physical = kvmalloc(sizes, n, km_ok, vm_ok)
    if ok:
        return True, new_kind, new_physical, True
    return False, kind, physical, False


@compiled
def flags(ok: bool, calls: int, attempted: bool, shrink_ok: bool, fresh: bool) -> int:
    return (
        ok * FLAG_OK + attempted * FLAG_ATTEMPTED + (attempted and shrink_ok) * FLAG_SHRINK_OK + fresh * FLAG_FRESH
        + (calls << CALLS_SHIFT)
    )


@compiled
def register(
    sizes: Any, ln: int, layout: int, kind: int, phys: int, km_ok: bool, vm_ok: bool
) -> tuple[int, int, int, int, int]:
    """Vec::push: room for one more, or reserve's growth to max(2 * capacity, len + 1) through one realloc call.

    The post-state (len, layout, kind, physical) and the edge's flags.
    """
    if layout > ln:
        return ln + 1, layout, kind, phys, flags(True, 0, False, False, False)
    new_layout = max(2 * layout, ln + 1)
    ok, new_kind, new_phys, fresh = kvrealloc(sizes, NONE if layout == 0 else kind, phys, new_layout, km_ok, vm_ok)
    if not ok:
        return ln, layout, kind, phys, flags(False, 1, False, False, False)
    replaced = fresh and kind != NONE and layout > 0
    return ln + 1, new_layout, new_kind, new_phys, flags(True, 1, False, False, replaced)


@compiled
def deregister(
    sizes: Any, page: int, ln: int, layout: int, kind: int, phys: int, trigger: bool, target: int, km_ok: bool,
    vm_ok: bool,
) -> tuple[int, int, int, int, int]:
    """retain of process 0, then the policy's shrink_to to `target` if `trigger` (its error ignored), as
    binder_step does it. The post-state and the edge's flags."""
    n = ln - 1
    goal = max(n, target)
    if not (trigger and layout > goal):  # shrink_to does something only above its target
        return n, layout, kind, phys, flags(True, 0, trigger, True, False)
    to_zero = goal == 0
    new_elems = 1 if to_zero else goal
    if kind != VMALLOC:
        # A kmalloc (or dangling) buffer goes through realloc: free at 0, else krealloc, in place when it fits.
        ok, new_kind, new_phys, fresh = kvrealloc(
            sizes, NONE if layout == 0 else kind, phys, new_elems, km_ok, vm_ok
        )
        shrink_ok = to_zero or ok
        if not shrink_ok:
            return n, layout, kind, phys, flags(True, 1, True, False, False)
        if to_zero:
            return n, goal, NONE, 0, flags(True, 1, True, True, False)
        return n, goal, new_kind, new_phys, flags(True, 1, True, True, fresh and kind != NONE)
    # A vmalloc buffer is replaced only if that frees a page: free at 0, else alloc, copy, free.
    if -(-(layout * ELEM_SIZE) // page) <= -(-(goal * ELEM_SIZE) // page):
        return n, layout, kind, phys, flags(True, 0, True, True, False)
    if to_zero:
        return n, goal, NONE, 0, flags(True, 1, True, True, False)
    ok, new_kind, new_phys = kvmalloc(sizes, new_elems, km_ok, vm_ok)
    if not ok:
        return n, layout, kind, phys, flags(True, 1, True, False, False)
    return n, goal, new_kind, new_phys, flags(True, 2, True, True, True)

