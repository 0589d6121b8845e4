"""One breadth-first level of the packed explorer, compiled (numba): successors, visited set, ids, edges.

The visited set is an open-addressing hash table from packed state keys to
node ids (linear probing, at most half full: packed.py grows it between
levels). Nodes get their ids in the order the reference explorer discovers
them (state by state, column by column) and each state's edges are written in
the order networkx lists them for the reference explorer's MultiDiGraph: by
neighbour, in the order each neighbour was first reached, parallel edges
together. Imported only when a graph is explored (packed_step.py says why).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verify.search.packed_step import (
    FLAG_ATTEMPTED,
    FLAG_FRESH,
    FLAG_SHRINK_OK,
    compiled,
    deregister,
    register,
)

EMPTY = -1  # a free slot of the table
GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # 2^64 / golden ratio, as a signed 64-bit int
OUTCOMES = 4  # models.allocator.ALL_OUTCOMES; an edge's column is 2 * outcome + action (packed_graph.COLUMNS)
COLUMNS = 2 * OUTCOMES
# Outcomes that change nothing observable collapse into one edge: what the reference explorer compares.
SEEN = ~(FLAG_FRESH | FLAG_ATTEMPTED | FLAG_SHRINK_OK)


@compiled
def _slot(key: int, mask: int) -> int:
    """A multiply and a fold of the high half: packed keys that differ only in low bits spread apart."""
    h = key * GOLDEN  # wraps in int64, as the compiled code does
    return (h ^ (h >> 32)) & mask


@compiled
def find_or_add(table: Any, key: int, new_id: int) -> int:
    """The key's id; a key not yet there is added with `new_id`. A slot holds (key, id): one cache line."""
    mask = len(table) - 1
    slot = _slot(key, mask)
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
            find_or_add(larger, table[slot, 0], table[slot, 1])


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
                    new[found, :] = post[c, :]
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
