"""Explicit-state exploration of the binder model on a small instance, with networkx.

The instance has a small PAGE_SIZE (so that kmalloc size classes, large kmalloc,
vmalloc and the page rule all occur within a few dozen processes) and a bound
on the capacity (a registration that would grow past it is not explored). Both
are printed with every result. States are canonical: process identities are
renamed 0..len-1 and allocation identities to 1, which loses nothing because
the model only compares identities for equality.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from models.allocator import ALL_OUTCOMES
from models.binder import ELEM_SIZE, BinderAction, BinderStep, Deregister, Policy, Register, binder_step
from models.elements import Elements
from models.machine import Platform
from models.vec import VecState

if TYPE_CHECKING:  # networkx is imported where a graph is made or searched: a command without one starts faster
    import networkx as nx


# The largest capacity bound an instance may have: the packed explorer's key (verify/search/packed.py) stays
# within int64 (checked there); 4096 already explores 5.6 million states. Here, not in packed.py, so that
# the command line checks a bound without loading numpy.
MAX_CAPACITY = 1 << 16


@dataclass(frozen=True)
class Instance:
    page_size: int = 64
    max_capacity: int = 40

    @property
    def platform(self) -> Platform:
        return Platform(ELEM_SIZE, self.page_size)

    def describe(self) -> str:
        return f"PAGE_SIZE {self.page_size} B, capacity <= {self.max_capacity}"


def canonical(v: VecState) -> VecState:
    buf = None if v.buf is None else replace(v.buf, id=1)
    return VecState(v.len, v.layout_len, buf, Elements.identities(v.len), 2)


@dataclass
class Exploration:
    policy: Policy
    instance: Instance
    graph: nx.MultiDiGraph
    initial: VecState
    seconds: float
    pruned: int  # registrations not explored because they would exceed the capacity bound

    @property
    def states(self) -> int:
        return int(self.graph.number_of_nodes())

    @property
    def edges(self) -> int:
        return int(self.graph.number_of_edges())

    def steps(self) -> Iterator[tuple[VecState, VecState, BinderStep]]:
        for u, v, data in self.graph.edges(data=True):
            yield u, v, data["step"]

    def path_to(self, target: VecState) -> list[BinderStep]:
        """The steps of a shortest path from the initial state (breadth-first search)."""
        import networkx as nx

        nodes = nx.shortest_path(self.graph, self.initial, target)
        return [self.first_step(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]

    def first_step(self, u: VecState, v: VecState) -> BinderStep:
        data = self.graph.get_edge_data(u, v)
        step: BinderStep = next(iter(data.values()))["step"]
        return step


def actions(state: VecState) -> Iterator[BinderAction]:
    for outcome in ALL_OUTCOMES:
        yield Register(state.len, outcome)  # a fresh identity: canonical ones are 0..len-1
        if state.len:
            yield Deregister(0, outcome)


def explore(policy: Policy, instance: Instance) -> Exploration:
    start = time.perf_counter()
    import networkx as nx

    plat = instance.platform
    initial = canonical(VecState())
    graph = nx.MultiDiGraph()
    graph.add_node(initial)
    queue = deque([initial])
    pruned = 0
    while queue:
        state = queue.popleft()
        seen: set[tuple[object, ...]] = set()
        for action in actions(state):
            taken = binder_step(plat, policy, state, action)
            if taken.post.layout_len > instance.max_capacity:
                pruned += 1
                continue
            post = canonical(taken.post)
            # Outcomes that change nothing observable collapse into one edge.
            key = (type(action).__name__, post, taken.ok, taken.allocator_calls, taken.shrank)
            if key in seen:
                continue
            seen.add(key)
            if post not in graph:
                graph.add_node(post)
                queue.append(post)
            graph.add_edge(state, post, step=taken, reallocates=taken.reallocates)
    return Exploration(policy, instance, graph, initial, time.perf_counter() - start, pruned)


def realloc_cycle(ex: Exploration) -> list[BinderStep] | None:
    """A reachable cycle in which every operation calls the allocator, if there is one."""
    import networkx as nx

    sub = nx.DiGraph()
    for u, v, data in ex.graph.edges(data=True):
        if data["reallocates"]:
            sub.add_edge(u, v, step=data["step"])
    try:
        cycle = nx.find_cycle(sub)
    except nx.NetworkXNoCycle:
        return None
    return [sub.edges[u, v]["step"] for u, v in cycle]


def worst_reallocations(ex: Exploration, k_max: int) -> list[int]:
    """For k = 1..k_max, the most operations that call the allocator among any k consecutive ones."""
    best = dict.fromkeys(ex.graph.nodes, 0)
    table = []
    for _ in range(k_max):
        nxt = {}
        for node in ex.graph.nodes:
            options = [int(d["reallocates"]) + best[v] for _, v, d in ex.graph.out_edges(node, data=True)]
            nxt[node] = max(options, default=0)
        best = nxt
        table.append(max(best.values()))
    return table
