"""Breadth-first exploration of the binder instance with packed states and a compiled inner loop (numba).

The reference explorer (explorer.py) calls the Python model once per state and
action; this one packs a state into integers (len, layout, kind, physical, the
request being the layout's bytes) and runs the same rules compiled, one
breadth-first level per call (packed_kernel.py), with the visited set a hash
table of packed keys. Between levels, Python evaluates the policy's own rule
over the whole level at once (its arithmetic is exact on Python ints, so it
stays in numpy object arrays) and grows the table. Nodes get their ids in the order the reference explorer
discovers them and edges keep its order and its deduplication, so that every
query of the graph (packed_graph.py) answers as the reference explorer's
networkx graph does.

The rules here cover the kernel's Vec and allocator and a policy's own trigger
and target; a policy with seeded Vec, allocator or operation faults is explored
by the reference explorer and converted (`packed_graph.from_exploration`).
tests/test_packed.py holds the two explorers to each other, and every edge a
verdict uses is replayed on the Python model (packed_graph.PackedGraph.steps).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from models import allocator as kv
from models.allocator import ALL_OUTCOMES
from models.binder import ELEM_SIZE, Policy
from models.machine import INT_MAX, Platform
from verify.search.explorer import MAX_CAPACITY, Instance
from verify.search.packed_graph import COLUMNS, PackedGraph

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
FIRST_TABLE_SLOTS = 1 << 16  # the visited table's first size: a small instance never grows it


def allocator_sizes(plat: Platform, max_elems: int) -> tuple[Any, ...]:
    """The allocator's sizes by a request's element count (from models/allocator.py): kmalloc (ksize of a
    fresh kmalloc), vmalloc_huge (kvmalloc's area), vmalloc_pages (vrealloc's new area), kmalloc_fits
    (within KMALLOC_MAX_SIZE), vmalloc_allowed (kvmalloc falls back to vmalloc: above a page, at most INT_MAX)."""
    nbytes = [n * ELEM_SIZE for n in range(max_elems + 1)]
    return (
        np.array([kv.kmalloc_physical(plat, b) if b else 0 for b in nbytes], dtype=np.int64),
        np.array([kv.vmalloc_physical(plat, b) if b else 0 for b in nbytes], dtype=np.int64),
        np.array([kv.page_rounded(plat, b) for b in nbytes], dtype=np.int64),
        np.array([b <= plat.kmalloc_max_size for b in nbytes]),
        np.array([plat.page_size < b <= INT_MAX for b in nbytes]),
    )


def policy_rule(policy: Policy, n: Ints, layout: Ints) -> tuple[Bools, Ints]:
    """The policy's trigger and target after a deregistration left n processes, for arrays of states."""
    shape = n.shape
    # The policy's rule, written for ints, applied to arrays (a constant rule broadcasts).
    rule: Any = policy
    trigger = np.broadcast_to(np.asarray(rule.trigger(n, layout), dtype=np.bool_), shape)
    # A target past i64::MAX (a wrapped one) is above every capacity, as i64::MAX is: it shrinks nothing.
    target = np.minimum(np.asarray(rule.target(n, layout), dtype=object), np.iinfo(np.int64).max)
    target = np.broadcast_to(np.asarray(target, dtype=np.int64), shape)
    return np.array(trigger), np.array(target)  # copies: writable and contiguous, one compiled signature


def explore_packed(policy: Policy, instance: Instance) -> PackedGraph:
    """The reachable graph of the instance, in the reference explorer's node and edge order."""
    if policy.faults or policy.source is not None:
        raise ValueError(f"the packed explorer runs the model's Vec, allocator and rule, not seeded faults or a"
                         f" source's operations: {policy.name}")
    if not 1 <= instance.max_capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity bound must be in 1..{MAX_CAPACITY}, not {instance.max_capacity}")
    from verify.search import packed_kernel  # numba: imported only to explore (compiled.py says why)

    start = time.perf_counter()
    plat = instance.platform
    bound = instance.max_capacity
    sizes = allocator_sizes(plat, 2 * bound + 2)
    phys_span = int(max(sizes[0].max(), sizes[1].max(), sizes[2].max())) + 1
    assert (((bound + 1) * (bound + 1)) * 3) * phys_span < 1 << 63, "packed keys would overflow int64"
    assert len(COLUMNS) == packed_kernel.COLUMNS and len(ALL_OUTCOMES) == packed_kernel.OUTCOMES
    km_ok = np.array([o.kmalloc_ok for o in ALL_OUTCOMES])
    vm_ok = np.array([o.vmalloc_ok for o in ALL_OUTCOMES])
    table = np.zeros((FIRST_TABLE_SLOTS, 2), dtype=np.int64)  # (key, id) per slot; all EMPTY
    packed_kernel.find_or_add(table, 0, 0)  # the initial state: all fields 0, key 0
    zero = np.zeros(1, dtype=np.int64)
    frontier: tuple[Ints, ...] = (zero, zero, zero, zero)  # a level's states: len, layout, kind, physical
    level_sizes = [1]
    edge_parts: tuple[list[Any], ...] = ([], [], [], [])  # src, dst, col, flags of each level
    first_id, nodes, pruned = 0, 1, 0
    while len(frontier[0]):
        ln, layout, kind, phys = frontier
        most = len(COLUMNS) * len(ln)  # every successor new
        if 2 * (nodes + most) > len(table):  # at most half full; grown fourfold, so rarely moved
            larger = np.zeros((4 * len(table), 2), dtype=np.int64)
            packed_kernel.rehash(table, larger)
            table = larger
        trigger, target = policy_rule(policy, ln - 1, layout)
        new = np.empty((most, 4), dtype=np.int64)
        level_edges: tuple[Any, ...] = tuple(np.empty(most, t) for t in (np.int32, np.int32, np.uint8, np.uint8))
        found, edges, level_pruned = packed_kernel.expand(
            sizes, plat.page_size, bound, phys_span, km_ok, vm_ok, ln, layout, kind, phys, first_id, trigger,
            target, table, nodes, new, *level_edges,
        )
        for part, array in zip(edge_parts, level_edges, strict=True):
            part.append(array[:edges].copy())
        pruned += level_pruned
        first_id += len(ln)
        nodes += found
        frontier = tuple(new[:found, i].copy() for i in range(4))
        level_sizes.append(found)
    # Only the frontier was kept of each level: every state's fields are read back from its key.
    states = tuple(np.empty(nodes, dtype=np.int64) for _ in range(4))
    packed_kernel.unpack(table, bound, phys_span, *states)
    del table
    depth = np.repeat(np.arange(len(level_sizes)), level_sizes)
    src, dst, col, flags = (_joined(part) for part in edge_parts)
    return PackedGraph.build(
        policy,
        instance,
        states=states,
        depth=depth,
        src=src,
        dst=dst,
        col=col,
        flags=flags,
        pruned=pruned,
        seconds=time.perf_counter() - start,
    )


def _joined(parts: list[Any]) -> Any:
    """The levels' parts in level order, each given back as soon as it is copied (less memory at the peak)."""
    joined = np.empty(sum(len(p) for p in parts), dtype=parts[0].dtype)
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        joined[at : at + len(part)] = part
        at += len(part)
    return joined
