"""The explored binder graph as arrays, and the queries the explicit-state properties ask of it.

Nodes are canonical states (explorer.canonical) numbered in breadth-first
discovery order; edges are stored in the order networkx's MultiDiGraph lists
them for the reference explorer (by source, then by first edge to each
neighbour). Each query breaks ties as the reference explorer's networkx code
does (`path_to` is networkx's bidirectional breadth-first search, `realloc_cycle`
its find_cycle), so verdicts and traces are the same on the instances both
explorers can do (tests/test_packed.py). An edge leaves the arrays only as a
BinderStep computed again by the Python model (`step`), which must agree with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from models.allocator import ALL_OUTCOMES, Allocation, Kind
from models.binder import ELEM_SIZE, BinderStep, Deregister, Policy, Register, binder_step
from models.elements import Elements
from models.vec import VecState
from verify.search.explorer import Exploration, Instance, canonical

Ints = npt.NDArray[np.int64]
Ids = npt.NDArray[np.integer[Any]]  # node ids: int32 in the graph, int64 where computed
Bools = npt.NDArray[np.bool_]
REGISTER, DEREGISTER = 0, 1
# An edge's column: (index in ALL_OUTCOMES, action), in the order the reference explorer tries them.
COLUMNS = tuple((o, a) for o in range(len(ALL_OUTCOMES)) for a in (REGISTER, DEREGISTER))
FLAG_OK, FLAG_ATTEMPTED, FLAG_SHRINK_OK, FLAG_FRESH = 1, 2, 4, 8  # FRESH: a new allocation replaced a live one
CALLS_SHIFT = 4
KINDS = (None, Kind.KMALLOC, Kind.VMALLOC)


def calls_flags(calls: Ints) -> Ints:
    return calls << CALLS_SHIFT


class EdgeMismatch(AssertionError):
    """The Python model does not take an explored edge as the arrays say."""


@dataclass
class PackedGraph:
    policy: Policy
    instance: Instance
    len: Ints
    layout: Ints
    kind: Ints
    requested: Ints
    physical: Ints
    depth: Ints  # breadth-first distance from the initial state (node 0)
    src: npt.NDArray[np.int32]
    dst: npt.NDArray[np.int32]
    col: npt.NDArray[np.uint8]
    flags: npt.NDArray[np.uint8]
    out_start: Ints  # the out-edges of node u are src[out_start[u]:out_start[u + 1]]
    pruned: int
    seconds: float

    @classmethod
    def build(
        cls,
        policy: Policy,
        instance: Instance,
        states: tuple[Ints, ...],
        depth: Ints,
        src: npt.NDArray[np.integer[Any]],
        dst: npt.NDArray[np.integer[Any]],
        col: npt.NDArray[np.uint8],
        flags: npt.NDArray[np.uint8],
        pruned: int,
        seconds: float,
        requested: Ints | None = None,
    ) -> PackedGraph:
        """From edges in networkx's order for the reference explorer's graph."""
        ln, layout, kind, physical = (np.asarray(a, dtype=np.int64) for a in states)
        out_start = _starts(src, len(ln))
        if requested is None:
            requested = np.where(kind == 0, 0, layout * ELEM_SIZE)
        return cls(
            policy, instance, ln, layout, kind, requested, physical, np.asarray(depth, dtype=np.int64),
            np.asarray(src, dtype=np.int32), np.asarray(dst, dtype=np.int32), col, flags, out_start, pruned, seconds,
        )

    # --- sizes and edge attributes --------------------------------------------------

    @property
    def states(self) -> int:
        return len(self.len)

    @property
    def edges(self) -> int:
        return len(self.src)

    def describe(self) -> str:
        return self.instance.describe()

    def is_register(self) -> Bools:
        return self._is_register

    @cached_property
    def _is_register(self) -> Bools:
        return np.array([a == REGISTER for _, a in COLUMNS])[self.col]

    def flag(self, bit: int) -> Bools:
        return (self.flags & bit) != 0

    def calls(self) -> Ints:
        return (self.flags >> CALLS_SHIFT).astype(np.int64)

    def shrank(self) -> Bools:
        return self._shrank

    @cached_property
    def _shrank(self) -> Bools:
        return self._layout_change < 0

    def reallocates(self) -> Bools:
        """BinderStep.reallocates: a new layout, or a different allocation behind the pointer."""
        return self._reallocates

    @cached_property
    def _reallocates(self) -> Bools:
        live_pre, live_post = self.kind[self.src] != 0, self.kind[self.dst] != 0
        moved = (live_pre != live_post) | (live_pre & live_post & self.flag(FLAG_FRESH))
        return (self._layout_change != 0) | moved

    def shrink_failed(self) -> Bools:
        return self.flag(FLAG_ATTEMPTED) & ~self.flag(FLAG_SHRINK_OK)

    def shrink_refused(self) -> Bools:
        """properties.binder.shrink_refused: shrink_to returned Ok and left the layout as it was."""
        return self.flag(FLAG_SHRINK_OK) & (self._layout_change == 0)

    @cached_property
    def _layout_change(self) -> npt.NDArray[np.int8]:
        """Each edge's sign of layout(dst) - layout(src): one byte an edge, where gathering both would take 16."""
        from verify.search.packed_graph_loops import signs  # numba: compiled.py says why it is late

        change: npt.NDArray[np.int8] = signs(self.layout, self.src, self.dst)
        return change

    # --- states and steps as the Python model has them ----------------------------

    def state(self, node: int) -> VecState:
        kind = KINDS[int(self.kind[node])]
        buf = None if kind is None else Allocation(1, kind, int(self.requested[node]), int(self.physical[node]))
        n = int(self.len[node])
        return VecState(n, int(self.layout[node]), buf, Elements.identities(n), 2)

    def step(self, edge: int) -> BinderStep:
        """The edge as the Python model takes it from its canonical pre-state; EdgeMismatch if it disagrees."""
        pre = self.state(int(self.src[edge]))
        outcome, action = COLUMNS[int(self.col[edge])]
        taken = binder_step(
            self.instance.platform,
            self.policy,
            pre,
            Register(pre.len, ALL_OUTCOMES[outcome]) if action == REGISTER else Deregister(0, ALL_OUTCOMES[outcome]),
        )
        f = int(self.flags[edge])
        attempted = taken.shrink_attempted
        shrink_ok = attempted and taken.steps[-1].ok
        fresh = taken.pre.buf is not None and taken.post.buf is not None and taken.pre.buf.id != taken.post.buf.id
        seen = (taken.ok, taken.allocator_calls, attempted, shrink_ok, fresh)
        held = (bool(f & FLAG_OK), f >> CALLS_SHIFT, bool(f & FLAG_ATTEMPTED), bool(f & FLAG_SHRINK_OK),
                bool(f & FLAG_FRESH))
        if canonical(taken.post) != self.state(int(self.dst[edge])) or seen != held:
            raise EdgeMismatch(f"explored edge {edge} ({taken.action} from {pre}) is not the Python model's step")
        return taken

    def steps(self) -> Iterator[BinderStep]:
        for edge in range(self.edges):
            yield self.step(edge)

    # --- the queries ----------------------------------------------------------------

    def shortest(self, last: Bools) -> list[int] | None:
        """The edges of a shortest trace from the initial state ending in an edge where `last` holds."""
        candidates = np.nonzero(last)[0]
        if not len(candidates):
            return None
        edge = int(candidates[np.argmin(self.depth[self.src[candidates]])])
        return self.path_to(int(self.src[edge])) + [edge]

    def shortest_pair(self, first: Bools, second: Bools) -> list[int] | None:
        """The same for two consecutive edges, the first where `first` holds and the second where `second` does."""
        followed = np.zeros(self.states, dtype=np.bool_)
        followed[self.src[second]] = True
        candidates = np.nonzero(first & followed[self.dst])[0]
        if not len(candidates):
            return None
        edge = int(candidates[np.argmin(self.depth[self.src[candidates]])])
        v = int(self.dst[edge])
        out = np.arange(self.out_start[v], self.out_start[v + 1])
        after = int(out[second[out]][0])
        return self.path_to(int(self.src[edge])) + [edge, after]

    def path_to(self, target: int) -> list[int]:
        """A shortest path from node 0, as networkx's bidirectional search finds it; each hop's first edge."""
        nodes = self._bidirectional(0, target)
        return [self._first_edge(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]

    def _first_edge(self, u: int, v: int) -> int:
        out = np.arange(self.out_start[u], self.out_start[u + 1])
        return int(out[self.dst[out] == v][0])

    @cached_property
    def _neighbours(self) -> tuple[Ids, Ids, Ids, Ids]:
        """Distinct successors (first-edge order) and predecessors (by id, the order edges were inserted)."""
        distinct = np.ones(self.edges, dtype=np.bool_)
        distinct[1:] = (self.src[1:] != self.src[:-1]) | (self.dst[1:] != self.dst[:-1])
        s, d = self.src[distinct], self.dst[distinct]
        from verify.search.packed_graph_loops import by_target  # numba: compiled.py says why it is late

        pred, pred_start = by_target(s, d, self.states)  # sources stay ascending within each target
        return d, _starts(s, self.states), pred, pred_start

    def _bidirectional(self, source: int, target: int) -> list[int]:
        """networkx's _bidirectional_pred_succ and the path it builds, over arrays."""
        if source == target:
            return [source]
        succ, succ_start, pred, pred_start = self._neighbours
        before: dict[int, int | None] = {source: None}
        after: dict[int, int | None] = {target: None}
        forward, reverse = [source], [target]
        meet = None
        while forward and reverse and meet is None:
            if len(forward) <= len(reverse):
                level, forward = forward, []
                for v in level:
                    for w in succ[succ_start[v]:succ_start[v + 1]].tolist():
                        if w not in before:
                            forward.append(w)
                            before[w] = v
                        if w in after:
                            meet = w
                            break
                    if meet is not None:
                        break
            else:
                level, reverse = reverse, []
                for v in level:
                    for w in pred[pred_start[v]:pred_start[v + 1]].tolist():
                        if w not in after:
                            after[w] = v
                            reverse.append(w)
                        if w in before:
                            meet = w
                            break
                    if meet is not None:
                        break
        if meet is None:
            import networkx as nx  # where needed: explorer.py says why

            raise nx.NetworkXNoPath(f"no path from node {source} to node {target}")
        path: list[int] = []
        hop: int | None = meet
        while hop is not None:
            path.append(hop)
            hop = before[hop]
        path.reverse()
        hop = after[meet]
        while hop is not None:
            path.append(hop)
            hop = after[hop]
        return path

    def realloc_cycle(self) -> list[int] | None:
        """A reachable cycle of edges that all call the allocator, as explorer.realloc_cycle finds it."""
        realloc = np.nonzero(self.reallocates())[0]
        from verify.search.packed_graph_loops import has_cycle

        if not has_cycle(_starts(self.src[realloc], self.states), self.dst[realloc]):
            return None
        # networkx finds the same cycle the reference explorer reports, on the reallocating edges alone.
        import networkx as nx

        sub = nx.DiGraph()
        for e in realloc.tolist():
            sub.add_edge(int(self.src[e]), int(self.dst[e]), edge=e)  # a later parallel edge wins, as there
        return [int(sub.edges[u, v]["edge"]) for u, v in nx.find_cycle(sub)]

    def worst_reallocations(self, k_max: int) -> list[int]:
        """For k = 1..k_max, the most reallocating operations among any k consecutive ones."""
        from verify.search.packed_graph_loops import worst_gains

        return [int(x) for x in worst_gains(self.out_start, self.dst, self.reallocates().astype(np.int32), k_max)]


def _starts(ordered: Ids, nodes: int) -> Ints:
    """Where each node's run begins in an array sorted by node (and where the last one ends)."""
    from verify.search.packed_graph_loops import starts  # numba: compiled.py says why it is late

    result: Ints = starts(ordered, nodes)
    return result


def from_exploration(ex: Exploration) -> PackedGraph:
    """The reference explorer's networkx graph as arrays (for policies with seeded faults, and the tests)."""
    index = {state: i for i, state in enumerate(ex.graph.nodes)}
    states = list(index)
    col, flags, src, dst = [], [], [], []
    for u, v, s in ex.steps():
        action = REGISTER if isinstance(s.action, Register) else DEREGISTER
        col.append(COLUMNS.index((ALL_OUTCOMES.index(s.action.outcome), action)))
        attempted = s.shrink_attempted
        fresh = s.pre.buf is not None and s.post.buf is not None and s.pre.buf.id != s.post.buf.id
        flags.append(
            s.ok * FLAG_OK + attempted * FLAG_ATTEMPTED + (attempted and s.steps[-1].ok) * FLAG_SHRINK_OK
            + fresh * FLAG_FRESH + (s.allocator_calls << CALLS_SHIFT)
        )
        src.append(index[u])
        dst.append(index[v])
    import networkx as nx

    depth_of = nx.single_source_shortest_path_length(ex.graph, ex.initial)
    kinds = [0 if s.buf is None else KINDS.index(s.buf.kind) for s in states]
    return PackedGraph.build(
        ex.policy,
        ex.instance,
        states=(
            np.array([s.len for s in states]),
            np.array([s.layout_len for s in states]),
            np.array(kinds),
            np.array([s.physical() for s in states]),
        ),
        depth=np.array([depth_of[s] for s in states]),
        src=np.array(src, dtype=np.int64),
        dst=np.array(dst, dtype=np.int64),
        col=np.array(col, dtype=np.uint8),
        flags=np.array(flags, dtype=np.uint8),
        pruned=ex.pruned,
        seconds=ex.seconds,
        requested=np.array([0 if s.buf is None else s.buf.requested for s in states], dtype=np.int64),
    )
