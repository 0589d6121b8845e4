"""The packed explorer's compiled inner loop (numba): the binder step on one packed state, and one
breadth-first level of states with the visited set.

A state is (len, layout, kind, physical) with the request equal to the
layout's bytes; an action is a registration or a deregistration under one
allocator outcome (kmalloc ok?, vmalloc ok?). Each step function mirrors its
Python model counterpart (models/vec.py, models/allocator.py, models/binder.py)
branch by branch; tests/test_packed.py holds the explored graph to the
reference explorer's, which calls that model, edge for edge.

The visited set is an open-addressing hash table from packed state keys to
node ids (linear probing, at most half full: packed.py grows it between
levels). Nodes get their ids in the order the reference explorer discovers
them (state by state, column by column) and each state's edges are written in
the order networkx lists them for the reference explorer's MultiDiGraph: by
neighbour, in the order each neighbour was first reached, parallel edges
together.

The step and the level share this file because numba's on-disk cache is keyed
by the file of the function compiled (compiled.py): a step kept in another
file could change without the cached level noticing. The constants imported from
other files (the edge flags, the element size) are frozen into the cached code
without numba noticing when they change, so on import `refresh_if_stale`
compares them with the ones the cache was compiled with and, when they differ,
drops the whole cache. This module is imported only when a graph is explored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.binder import ELEM_SIZE
from verify.search.compiled import compiled, inlined
from verify.search.packed_graph import CALLS_SHIFT, FLAG_ATTEMPTED, FLAG_FRESH, FLAG_OK, FLAG_SHRINK_OK

NONE, KMALLOC, VMALLOC = 0, 1, 2  # the buffer's kind (packed_graph.KINDS); NONE: dangling

# `sizes`: the allocator's sizes indexed by a request's element count, as packed.allocator_sizes makes them.
@inlined
def kvmalloc(sizes: Any, n: int, km_ok: bool, vm_ok: bool) -> tuple[bool, int, int]:
    """kvmalloc of n elements: kmalloc first, vmalloc above a page. (Ok?, kind, physical); a success is new."""
    kmalloc, vmalloc_huge, _, kmalloc_fits, vmalloc_allowed = sizes
    if kmalloc_fits[n] and km_ok:
        return True, KMALLOC, kmalloc[n]
    if vmalloc_allowed[n] and vm_ok:
        return True, VMALLOC, vmalloc_huge[n]
    return False, NONE, 0


@inlined
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


@inlined
def flags(ok: bool, calls: int, attempted: bool, shrink_ok: bool, fresh: bool) -> int:
    return (
        ok * FLAG_OK + attempted * FLAG_ATTEMPTED + (attempted and shrink_ok) * FLAG_SHRINK_OK + fresh * FLAG_FRESH
        + (calls << CALLS_SHIFT)
    )


@inlined
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


@inlined
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



# --- one breadth-first level ------------------------------------------------------

EMPTY = 0  # a free slot: keys are stored plus one, so that np.zeros (lazily zeroed pages) makes a table
GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # 2^64 / golden ratio, as a signed 64-bit int
OUTCOMES = 4  # models.allocator.ALL_OUTCOMES; an edge's column is 2 * outcome + action (packed_graph.COLUMNS)
COLUMNS = 2 * OUTCOMES
# Outcomes that change nothing observable collapse into one edge: what the reference explorer compares.
SEEN = ~(FLAG_FRESH | FLAG_ATTEMPTED | FLAG_SHRINK_OK)


@compiled
def _slot(key: int, mask: int) -> int:
    """A multiply and a fold of the high half: packed keys that differ only in low bits spread apart."""
    h = key * GOLDEN  # wraps modulo 2^64
    return (h ^ (h >> 32)) & mask


@compiled
def find_or_add(table: Any, key: int, new_id: int) -> int:
    """The key's id; a key not yet there is added with `new_id`. A slot holds (key + 1, id) side by side, so a
    probe reads one cache line."""
    mask = len(table) - 1
    slot = _slot(key, mask)
    key += 1
    while True:
        at = table[slot, 0]
        if at == key:
            return int(table[slot, 1])
        if at == EMPTY:
            table[slot, 0] = key
            table[slot, 1] = new_id
            return new_id
        slot = (slot + 1) & mask


@compiled
def rehash(table: Any, larger: Any) -> None:
    """Move every key of one table into a larger, empty one."""
    for slot in range(len(table)):
        if table[slot, 0] != EMPTY:
            find_or_add(larger, table[slot, 0] - 1, table[slot, 1])


@compiled
def unpack(table: Any, bound: int, phys_span: int, ln: Any, layout: Any, kind: Any, phys: Any) -> None:
    """Every state's fields, by id, read back from its packed key (expand's post_key, inverted)."""
    for slot in range(len(table)):
        if table[slot, 0] != EMPTY:
            key, node = table[slot, 0] - 1, table[slot, 1]
            phys[node] = key % phys_span
            key //= phys_span
            kind[node] = key % 3
            key //= 3
            layout[node] = key % (bound + 1)
            ln[node] = key // (bound + 1)


@compiled
def expand(
    sizes: Any, page: int, bound: int, phys_span: int, km_ok: Any, vm_ok: Any,
    ln: Any, layout: Any, kind: Any, phys: Any, first_id: int, trigger: Any, target: Any, table: Any, nodes: int,
    new: Any, src: Any, dst: Any, col: Any, flg: Any,
) -> tuple[int, int, int]:
    """Explore a whole level: states ln, layout, kind, phys with ids from first_id, where the policy's rule
    gives trigger and target.

    New states go to the rows of `new` (len, layout, kind, physical) and get ids from `nodes` on; the
    level's edges go to src, dst, col, flg. Both have room for every successor. Returns (states found,
    edges, registrations pruned by the capacity bound).
    """
    post = np.empty((COLUMNS, 4), dtype=np.int64)
    post_flags = np.empty(COLUMNS, dtype=np.int64)
    post_key = np.empty(COLUMNS, dtype=np.int64)
    keep = np.empty(COLUMNS, dtype=np.bool_)
    to = np.empty(COLUMNS, dtype=np.int64)
    found, edges, pruned = 0, 0, 0
    for i in range(len(ln)):
        for c in range(COLUMNS):
            o, dereg = c // 2, c % 2 == 1
            if dereg:
                if ln[i] == 0:  # no process to deregister
                    keep[c] = False
                    continue
                s = deregister(sizes, page, ln[i], layout[i], kind[i], phys[i], trigger[i], target[i], km_ok[o],
                               vm_ok[o])
            else:
                s = register(sizes, ln[i], layout[i], kind[i], phys[i], km_ok[o], vm_ok[o])
            post[c, 0], post[c, 1], post[c, 2], post[c, 3], post_flags[c] = s
            if post[c, 1] > bound:
                pruned += 1
                keep[c] = False
                continue
            post_key[c] = ((post[c, 0] * (bound + 1) + post[c, 1]) * 3 + post[c, 2]) * phys_span + post[c, 3]
            keep[c] = True
            for e in range(c % 2, c, 2):  # an earlier column of the same action with the same edge
                if keep[e] and post_key[e] == post_key[c] and (post_flags[e] & SEEN) == (post_flags[c] & SEEN):
                    keep[c] = False
                    break
        for c in range(COLUMNS):
            if keep[c]:
                to[c] = find_or_add(table, post_key[c], nodes + found)
                if to[c] == nodes + found:
                    for f in range(4):
                        new[found, f] = post[c, f]
                    found += 1
        # Each neighbour's edges together, neighbours in the order they were first reached.
        for c in range(COLUMNS):
            if not keep[c]:
                continue
            first = True
            for e in range(c):
                if keep[e] and to[e] == to[c]:
                    first = False
                    break
            if not first:
                continue
            for e in range(c, COLUMNS):
                if keep[e] and to[e] == to[c]:
                    src[edges], dst[edges], col[edges], flg[edges] = first_id + i, to[e], e, post_flags[e]
                    edges += 1
    return found, edges, pruned


# The constants this file takes from other files, as the running code defines them.
IMPORTED = (ELEM_SIZE, CALLS_SHIFT, FLAG_ATTEMPTED, FLAG_FRESH, FLAG_OK, FLAG_SHRINK_OK)


@compiled
def _imported_when_compiled() -> tuple[int, int, int, int, int, int]:
    """IMPORTED as the cached machine code has it frozen."""
    return (ELEM_SIZE, CALLS_SHIFT, FLAG_ATTEMPTED, FLAG_FRESH, FLAG_OK, FLAG_SHRINK_OK)


def refresh_if_stale(current: tuple[int, ...] = IMPORTED) -> bool:
    """Whether the cache was compiled with other constants than `current`; if so, every function of this file
    is compiled afresh on its next call (numba's `recompile` flushes a function's cache)."""
    if tuple(_imported_when_compiled()) == current:
        return False
    for fn in (kvmalloc, kvrealloc, flags, register, deregister, _slot, find_or_add, rehash, unpack, expand,
               _imported_when_compiled):
        fn.recompile()  # type: ignore[union-attr]
    return True


refresh_if_stale()
