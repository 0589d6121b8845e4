"""Breadth-first exploration of the binder instance with packed states and vectorised steps (numpy).

The reference explorer (explorer.py) calls the Python model once per state and
action; this one computes the successors of a whole breadth-first level at once,
with the same rules written over arrays: a state is (len, layout, kind,
physical) with the request equal to the layout's bytes, packed into one integer
key, and the visited set is an open-addressing hash table of those keys. Nodes
get their ids in the order the reference explorer discovers them and edges keep
its order and its deduplication, so that every query of the graph
(packed_graph.py) answers as the reference explorer's networkx graph does.

The rules here cover the kernel's Vec and allocator and a policy's own trigger
and target (applied to arrays as they are); a policy with seeded Vec, allocator
or operation faults is explored by the reference explorer and converted
(`packed_graph.from_exploration`). tests/test_packed.py holds the two explorers
to each other, and every edge a verdict uses is replayed on the Python model
(packed_graph.PackedGraph.steps).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models import allocator as kv
from models.allocator import ALL_OUTCOMES
from models.binder import ELEM_SIZE, Policy
from models.machine import INT_MAX, Platform
from verify.search.explorer import Instance
from verify.search.packed_graph import (
    COLUMNS,
    DEREGISTER,
    FLAG_ATTEMPTED,
    FLAG_FRESH,
    FLAG_OK,
    FLAG_SHRINK_OK,
    PackedGraph,
    calls_flags,
)

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
NONE, KMALLOC, VMALLOC = 0, 1, 2  # the buffer's kind; NONE: dangling
MAX_CAPACITY = 1 << 16  # a packed key stays within int64 (checked); 4096 already explores 5.6 million states


@dataclass
class _Sizes:
    """The allocator's physical sizes, indexed by a request's element count (from models/allocator.py)."""

    kmalloc: Ints  # ksize() of a fresh kmalloc
    vmalloc_huge: Ints  # kvmalloc's area (huge mappings allowed)
    vmalloc_pages: Ints  # vrealloc's new area (small pages)
    kmalloc_fits: Bools  # within KMALLOC_MAX_SIZE
    vmalloc_allowed: Bools  # kvmalloc falls back to vmalloc: above a page, at most INT_MAX

    @classmethod
    def of(cls, plat: Platform, max_elems: int) -> _Sizes:
        nbytes = [n * ELEM_SIZE for n in range(max_elems + 1)]
        return cls(
            np.array([kv.kmalloc_physical(plat, b) if b else 0 for b in nbytes], dtype=np.int64),
            np.array([kv.vmalloc_physical(plat, b) if b else 0 for b in nbytes], dtype=np.int64),
            np.array([kv.page_rounded(plat, b) for b in nbytes], dtype=np.int64),
            np.array([b <= plat.kmalloc_max_size for b in nbytes]),
            np.array([plat.page_size < b <= INT_MAX for b in nbytes]),
        )


@dataclass
class _Alloc:
    """What a vectorised allocator call left: Ok?, the buffer's kind and physical size, and whether it is new."""

    ok: Bools
    kind: Ints
    physical: Ints
    fresh: Bools  # a new allocation


def _kvmalloc(sz: _Sizes, n: Ints, km_ok: Bools, vm_ok: Bools) -> _Alloc:
    """kvmalloc of n elements: kmalloc first, vmalloc above a page."""
    km = sz.kmalloc_fits[n] & km_ok
    vm = ~km & sz.vmalloc_allowed[n] & vm_ok
    kind = np.where(km, KMALLOC, np.where(vm, VMALLOC, NONE))
    physical = np.where(km, sz.kmalloc[n], np.where(vm, sz.vmalloc_huge[n], 0))
    return _Alloc(km | vm, kind, physical, km | vm)


def _kvrealloc(sz: _Sizes, kind: Ints, physical: Ints, n: Ints, km_ok: Bools, vm_ok: Bools) -> _Alloc:
    """kvrealloc of the buffer (kind NONE: NULL) to n > 0 elements: in place when it fits, else a new one."""
    fresh = _kvmalloc(sz, n, km_ok, vm_ok)  # NULL, and krealloc's fallback (its kmalloc fails the same way)
    in_place = (kind != NONE) & (n * ELEM_SIZE <= physical)
    vm_moved = (kind == VMALLOC) & ~in_place
    km_moved = (kind == KMALLOC) & ~in_place
    km_new = km_moved & sz.kmalloc_fits[n] & km_ok  # krealloc's own kmalloc
    ok = np.where(
        in_place, True, np.where(vm_moved, vm_ok, np.where(km_moved, km_new | fresh.ok, fresh.ok))
    ).astype(np.bool_)
    new_kind = np.where(in_place, kind, np.where(vm_moved, VMALLOC, np.where(km_new, KMALLOC, fresh.kind)))
    new_physical = np.where(
        in_place,
        physical,
        np.where(vm_moved, sz.vmalloc_pages[n], np.where(km_new, sz.kmalloc[n], fresh.physical)),
    )
    return _Alloc(ok, np.where(ok, new_kind, kind), np.where(ok, new_physical, physical), ok & ~in_place)


@dataclass
class _Posts:
    """One action applied to every state of a level."""

    len: Ints
    layout: Ints
    kind: Ints
    physical: Ints
    flags: npt.NDArray[np.uint8]

    def fields(self) -> tuple[Any, ...]:
        return self.len, self.layout, self.kind, self.physical, self.flags


def _flags(ok: Bools, calls: Ints, attempted: Bools, shrink_ok: Bools, fresh: Bools) -> npt.NDArray[np.uint8]:
    """`fresh`: a new allocation replaced a live one (a live buffer with another id after the step)."""
    return (
        ok * FLAG_OK + attempted * FLAG_ATTEMPTED + (attempted & shrink_ok) * FLAG_SHRINK_OK + fresh * FLAG_FRESH
        + calls_flags(calls)
    ).astype(np.uint8)


def _register(sz: _Sizes, ln: Ints, layout: Ints, kind: Ints, phys: Ints, km_ok: Bools, vm_ok: Bools) -> _Posts:
    """Vec::push: room for one more, or reserve's growth to max(2 * capacity, len + 1) through one realloc call."""
    room = layout > ln
    new_layout = np.maximum(2 * layout, ln + 1)
    grown = _kvrealloc(sz, np.where(layout == 0, NONE, kind), phys, new_layout, km_ok, vm_ok)
    ok = room | grown.ok
    moved = ~room & grown.ok
    calls = np.where(room, 0, 1)
    no = np.zeros(ln.shape, dtype=np.bool_)
    return _Posts(
        np.where(ok, ln + 1, ln),
        np.where(moved, new_layout, layout),
        np.where(moved, grown.kind, kind),
        np.where(moved, grown.physical, phys),
        _flags(ok, calls, no, no, moved & grown.fresh & (kind != NONE) & (layout > 0)),
    )


def _deregister(
    sz: _Sizes, plat: Platform, policy: Policy, ln: Ints, layout: Ints, kind: Ints, phys: Ints, km_ok: Bools,
    vm_ok: Bools,
) -> _Posts:
    """retain of process 0, then the policy's shrink_to (its error ignored), as binder_step does it."""
    n = ln - 1
    shape = n.shape
    # The policy's rule, written for ints, applied to arrays (a constant rule broadcasts).
    rule: Any = policy
    trigger = np.broadcast_to(np.asarray(rule.trigger(n, layout), dtype=np.bool_), shape)
    # A target past i64::MAX (a wrapped one) is above every capacity, as i64::MAX is: it shrinks nothing.
    target = np.minimum(np.asarray(rule.target(n, layout), dtype=object), np.iinfo(np.int64).max)
    target = np.broadcast_to(np.asarray(target, dtype=np.int64), shape)
    goal = np.maximum(n, target)
    runs = trigger & (layout > goal)  # shrink_to does something only above its target
    to_zero = goal == 0
    # The allocators' sizes where shrink_to calls them (below the layout, so within the tables), 1 elsewhere.
    new_elems = np.where(runs & ~to_zero, goal, 1)
    # A kmalloc (or dangling) buffer goes through realloc: free at 0, else krealloc, in place when it fits.
    km_path = runs & (kind != VMALLOC)
    km = _kvrealloc(sz, np.where(layout == 0, NONE, kind), phys, new_elems, km_ok, vm_ok)
    km_ok_all = to_zero | km.ok
    # A vmalloc buffer is replaced only if that frees a page: free at 0, else alloc, copy, free.
    page = plat.page_size
    frees_page = -(-(layout * ELEM_SIZE) // page) > -(-(goal * ELEM_SIZE) // page)
    vm_path = runs & (kind == VMALLOC) & frees_page
    vm = _kvmalloc(sz, new_elems, km_ok, vm_ok)
    vm_ok_all = to_zero | vm.ok
    changes = (km_path & km_ok_all) | (vm_path & vm_ok_all)
    new_kind = np.where(to_zero, NONE, np.where(km_path, km.kind, vm.kind))
    new_phys = np.where(to_zero, 0, np.where(km_path, km.physical, vm.physical))
    fresh = np.where(km_path, ~to_zero & km.fresh, ~to_zero & vm.ok)
    calls = np.where(km_path, 1, np.where(vm_path, np.where(~to_zero & vm.ok, 2, 1), 0))
    shrink_ok = np.where(km_path, km_ok_all, np.where(vm_path, vm_ok_all, True))
    return _Posts(
        n,
        np.where(changes, goal, layout),
        np.where(changes, new_kind, kind),
        np.where(changes, new_phys, phys),
        _flags(np.ones(shape, dtype=np.bool_), calls, trigger, shrink_ok, changes & fresh & (kind != NONE)),
    )


class _KeyTable:
    """An open-addressing hash table from packed state keys to node ids, filled and probed for whole arrays."""

    EMPTY = -1

    def __init__(self, bits: int = 16) -> None:
        self.bits = bits
        self.keys: Ints = np.full(1 << bits, self.EMPTY, dtype=np.int64)
        self.ids: Ints = np.zeros(1 << bits, dtype=np.int64)
        self.count = 0

    def _slots(self, keys: Ints) -> Ints:
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (mixed >> np.uint64(64 - self.bits)).astype(np.int64)

    def find(self, keys: Ints) -> Ints:
        """Each key's id, or -1."""
        found = np.full(len(keys), -1, dtype=np.int64)
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = (1 << self.bits) - 1
        while len(pending):
            at = self.keys[slots[pending]]
            hit = at == keys[pending]
            found[pending[hit]] = self.ids[slots[pending[hit]]]
            pending = pending[~hit & (at != self.EMPTY)]
            slots[pending] = (slots[pending] + 1) & mask
        return found

    def add(self, keys: Ints, ids: Ints) -> None:
        """Insert keys that are new and distinct."""
        if 2 * (self.count + len(keys)) > len(self.keys):
            self._grow(self.count + len(keys))
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = (1 << self.bits) - 1
        while len(pending):
            free = pending[self.keys[slots[pending]] == self.EMPTY]
            # Among keys probing the same free slot, one write lands: that key takes the slot.
            self.keys[slots[free]] = keys[free]
            won = free[self.keys[slots[free]] == keys[free]]
            self.ids[slots[won]] = ids[won]
            placed = np.zeros(len(keys), dtype=np.bool_)
            placed[won] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) & mask
        self.count += len(keys)

    def _grow(self, needed: int) -> None:
        live = self.keys != self.EMPTY
        old_keys, old_ids = self.keys[live], self.ids[live]
        while (1 << self.bits) < 2 * needed:
            self.bits += 1
        self.keys = np.full(1 << self.bits, self.EMPTY, dtype=np.int64)
        self.ids = np.zeros(1 << self.bits, dtype=np.int64)
        self.count = 0
        self.add(old_keys, old_ids)


def explore_packed(policy: Policy, instance: Instance) -> PackedGraph:
    """The reachable graph of the instance, in the reference explorer's node and edge order."""
    if policy.faults or policy.source is not None:
        raise ValueError(f"the packed explorer runs the model's Vec, allocator and rule, not seeded faults or a"
                         f" source's operations: {policy.name}")
    if not 1 <= instance.max_capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity bound must be in 1..{MAX_CAPACITY}, not {instance.max_capacity}")
    start = time.perf_counter()
    plat = instance.platform
    bound = instance.max_capacity
    sz = _Sizes.of(plat, 2 * bound + 2)
    phys_span = int(max(sz.kmalloc.max(), sz.vmalloc_huge.max(), sz.vmalloc_pages.max())) + 1
    assert (((bound + 1) * (bound + 1)) * 3) * phys_span < 1 << 63, "packed keys would overflow int64"

    def key(ln: Ints, layout: Ints, kind: Ints, phys: Ints) -> Ints:
        return ((ln * (bound + 1) + layout) * 3 + kind) * phys_span + phys

    zero = np.zeros(1, dtype=np.int64)
    table = _KeyTable()
    table.add(key(zero, zero, zero, zero), zero)
    levels: list[tuple[Ints, Ints, Ints, Ints]] = [(zero, zero, zero, zero)]
    src_parts: list[npt.NDArray[np.int32]] = []
    dst_parts: list[npt.NDArray[np.int32]] = []
    col_parts: list[npt.NDArray[np.uint8]] = []
    flag_parts: list[npt.NDArray[np.uint8]] = []
    frontier = levels[0]
    first_id, nodes, pruned = 0, 1, 0
    km_ok = np.array([o.kmalloc_ok for o in ALL_OUTCOMES])  # one column per outcome
    vm_ok = np.array([o.vmalloc_ok for o in ALL_OUTCOMES])
    is_dereg = np.array([a == DEREGISTER for _, a in COLUMNS])
    action = np.array([a for _, a in COLUMNS])
    earlier = np.tril(np.ones((len(COLUMNS), len(COLUMNS)), dtype=np.bool_), -1) & (action[:, None] == action)
    while len(frontier[0]):
        ln, layout, kind, phys = (a[:, None] for a in frontier)
        reg = _register(sz, ln, layout, kind, phys, km_ok, vm_ok)
        dereg = _deregister(sz, plat, policy, ln, layout, kind, phys, km_ok, vm_ok)
        # (state, outcome, action) -> (state, column): the columns' order, outcome after outcome.
        post_len, post_layout, post_kind, post_phys, flags = (
            np.stack(np.broadcast_arrays(r, d), axis=2).reshape(len(ln), len(COLUMNS))
            for r, d in zip(reg.fields(), dereg.fields(), strict=True)
        )
        keys = key(post_len, post_layout, post_kind, post_phys)
        exists = ~is_dereg | (ln > 0)
        within = post_layout <= bound
        pruned += int((exists & ~within).sum())
        keep = exists & within
        # Outcomes that change nothing observable collapse into one edge: (action, post, ok, calls) as seen first.
        same = flags & ~np.uint8(FLAG_FRESH | FLAG_ATTEMPTED | FLAG_SHRINK_OK)
        equal = (keys[:, :, None] == keys[:, None, :]) & (same[:, :, None] == same[:, None, :])
        keep &= ~(equal & keep[:, None, :] & earlier).any(axis=2)
        rows, cols = np.nonzero(keep)  # row-major: the reference explorer's order
        edge_keys = keys[rows, cols]
        dst = table.find(edge_keys)
        new = dst < 0
        if new.any():
            uniq, first, inverse = np.unique(edge_keys[new], return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")  # discovery order
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            ids = nodes + rank
            table.add(uniq, ids)
            dst[new] = ids[inverse]
            picked = np.nonzero(new)[0][first[order]]
            r, c = rows[picked], cols[picked]
            frontier = (post_len[r, c], post_layout[r, c], post_kind[r, c], post_phys[r, c])
            levels.append(frontier)
            nodes += len(uniq)
        else:
            frontier = (zero[:0], zero[:0], zero[:0], zero[:0])
        # networkx lists a node's edges by neighbour, in the order each was first reached: parallel edges together.
        dst_cells = np.full(keep.shape, -1, dtype=np.int64)
        dst_cells[rows, cols] = dst
        first_col = ((dst_cells[:, :, None] == dst_cells[:, None, :]) & keep[:, None, :]).argmax(axis=2)
        order = np.argsort((rows * len(COLUMNS) + first_col[rows, cols]) * len(COLUMNS) + cols, kind="stable")
        src_parts.append((first_id + rows[order]).astype(np.int32))
        dst_parts.append(dst[order].astype(np.int32))
        col_parts.append(cols[order].astype(np.uint8))
        flag_parts.append(flags[rows, cols][order])
        first_id += len(ln)
    del table
    return PackedGraph.build(
        policy,
        instance,
        states=_concat(levels),
        depth=np.repeat(np.arange(len(levels)), [len(level[0]) for level in levels]),
        src=np.concatenate(src_parts),
        dst=np.concatenate(dst_parts),
        col=np.concatenate(col_parts),
        flags=np.concatenate(flag_parts),
        pruned=pruned,
        seconds=time.perf_counter() - start,
    )


def _concat(levels: list[tuple[Ints, Ints, Ints, Ints]]) -> tuple[Any, ...]:
    return tuple(np.concatenate([level[i] for level in levels]) for i in range(4))
