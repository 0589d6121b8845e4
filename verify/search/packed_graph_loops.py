"""The loops of packed_graph.py's queries that visit every edge, compiled (numba).

Each is a plain loop over the edge arrays (sorted by source; a node's
out-edges are src[out_start[u]:out_start[u + 1]]), where numpy would need a sort
or a pass of a dozen calls per step. Imported only by a query that needs one
(compiled.py says why).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verify.search.compiled import compiled


@compiled
def starts(ordered: Any, nodes: int) -> Any:
    """Where each node's run begins in an array sorted by node, and where the last one ends."""
    out = np.empty(nodes + 1, dtype=np.int64)
    at = 0
    for u in range(nodes + 1):
        while at < len(ordered) and ordered[at] < u:
            at += 1
        out[u] = at
    return out


@compiled
def signs(value: Any, src: Any, dst: Any) -> Any:
    """The sign of value[dst] - value[src] for each edge."""
    out = np.empty(len(src), dtype=np.int8)
    for e in range(len(src)):
        a, b = value[src[e]], value[dst[e]]
        out[e] = 1 if b > a else (-1 if b < a else 0)
    return out


@compiled
def worst_gains(out_start: Any, dst: Any, gain: Any, k_max: int) -> Any:
    """For k = 1..k_max, the largest sum of `gain` along any k consecutive edges (a path of k edges or one
    ending in a node without successors): best_k(u) = max over u's edges e of gain(e) + best_{k-1}(dst(e))."""
    nodes = len(out_start) - 1
    best = np.zeros(nodes, dtype=np.int32)
    nxt = np.zeros(nodes, dtype=np.int32)
    table = np.zeros(k_max, dtype=np.int64)
    for k in range(k_max):
        most = 0
        for u in range(nodes):
            top = 0
            for e in range(out_start[u], out_start[u + 1]):
                top = max(top, gain[e] + best[dst[e]])
            nxt[u] = top
            most = max(most, top)
        best, nxt = nxt, best
        table[k] = most
    return table


@compiled
def by_target(src: Any, dst: Any, nodes: int) -> tuple[Any, Any]:
    """The sources of the edges grouped by target, in edge order within a group (a stable counting sort),
    and where each target's group starts."""
    start = np.zeros(nodes + 1, dtype=np.int64)
    for v in dst:
        start[v + 1] += 1
    for v in range(nodes):
        start[v + 1] += start[v]
    filled = start[:-1].copy()
    sources = np.empty(len(src), dtype=src.dtype)
    for e in range(len(src)):
        sources[filled[dst[e]]] = src[e]
        filled[dst[e]] += 1
    return sources, start


@compiled
def has_cycle(out_start: Any, dst: Any) -> bool:
    """Kahn's algorithm: a cycle is what is left once nodes without predecessors are peeled off."""
    nodes = len(out_start) - 1
    indeg = np.zeros(nodes, dtype=np.int64)
    for v in dst:
        indeg[v] += 1
    queue = np.empty(nodes, dtype=np.int64)
    tail = 0
    for u in range(nodes):
        if indeg[u] == 0:
            queue[tail] = u
            tail += 1
    head = 0
    while head < tail:
        u = queue[head]
        head += 1
        for e in range(out_start[u], out_start[u + 1]):
            indeg[dst[e]] -= 1
            if indeg[dst[e]] == 0:
                queue[tail] = dst[e]
                tail += 1
    return tail < nodes
