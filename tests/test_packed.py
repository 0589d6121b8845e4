"""The packed explorer against the reference explorer: the same graph, the same answers, edge for edge."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from models.binder import POLICIES, Policy, policy_named, with_faults
from properties.binder import EDGE_TESTS
from verify.search import packed
from verify.search.explorer import Instance, canonical, explore, realloc_cycle, worst_reallocations
from verify.search.packed import MAX_CAPACITY, explore_packed
from verify.search.packed_graph import FLAG_SHRINK_OK, EdgeMismatch, PackedGraph, from_exploration

ARRAYS = ("len", "layout", "kind", "requested", "physical", "depth", "src", "dst", "col", "flags", "out_start")
# A policy that reallocates on every operation around capacity 4: grow at 4, shrink back at 3.
THRASHING = Policy(
    "thrash",
    "len < cap: shrink_to(len)",
    lambda n, cap: n < cap,
    lambda n, cap: n,
    lambda n, cap: n < cap,
    lambda n, cap: n,
)


def _hops(packed: PackedGraph, edges: list[int]) -> list[tuple[object, object]]:
    """Each edge as the Python model takes it: its canonical pre-state and its action."""
    return [(canonical(packed.step(e).pre), packed.step(e).action) for e in edges]


def _pair(policy: Policy, bound: int) -> tuple[PackedGraph, PackedGraph]:
    instance = Instance(64, bound)
    return explore_packed(policy, instance), from_exploration(explore(policy, instance))


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("bound", [16, 40, 128])
def test_the_packed_graph_is_the_reference_graph(policy: Policy, bound: int) -> None:
    packed, reference = _pair(policy, bound)
    for name in ARRAYS:
        assert np.array_equal(getattr(packed, name), getattr(reference, name)), name
    assert packed.pruned == reference.pruned


@pytest.mark.parametrize("page", [4096, 65536])
def test_the_packed_graph_is_the_reference_graph_on_real_pages(page: int) -> None:
    instance = Instance(page, 64)
    packed, reference = (
        explore_packed(policy_named("v6"), instance),
        from_exploration(explore(policy_named("v6"), instance)),
    )
    assert all(np.array_equal(getattr(packed, n), getattr(reference, n)) for n in ARRAYS)


@pytest.mark.parametrize(
    "faults",
    [frozenset({f}) for f in ("binder-trigger-cap-8", "binder-target-cap-half", "binder-target-len-8")],
    ids=sorted,
)
def test_a_policys_own_rule_faults_run_packed_too(faults: frozenset[str]) -> None:
    policy = with_faults(policy_named("v6"), faults)
    assert not policy.faults  # rule faults change trigger and target only
    packed, reference = _pair(policy, 40)
    assert all(np.array_equal(getattr(packed, n), getattr(reference, n)) for n in ARRAYS)


def test_state_counts_of_the_issue_at_four_bounds() -> None:
    # The counts spin's pan stores for bench/binder.pml at the same bounds.
    counts = [explore_packed(policy_named("v6"), Instance(64, b)).states for b in (40, 128, 512, 1024)]
    assert counts == [749, 5802, 89250, 354626]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_edge_is_the_python_models_step(policy: Policy) -> None:
    packed = explore_packed(policy, Instance(64, 40))
    steps = list(packed.steps())
    reference = explore(policy, Instance(64, 40))
    assert [(canonical(s.pre), s.action, canonical(s.post)) for s in steps] == [
        (u, s.action, v) for u, v, s in reference.steps()
    ]


def test_an_edge_the_python_model_does_not_take_is_refused() -> None:
    packed = explore_packed(policy_named("v6"), Instance(64, 40))
    packed.layout[int(packed.dst[0])] += 1  # the first registration's post-state, altered
    with pytest.raises(EdgeMismatch):
        packed.step(0)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_the_edge_tests_are_the_judges(policy: Policy) -> None:
    packed = explore_packed(policy, Instance(64, 40))
    plat = packed.instance.platform
    steps = list(packed.steps())
    for judge, tests in EDGE_TESTS.items():
        if len(tests) == 1:
            assert tests[0](packed).tolist() == [judge(plat, [s], 0) for s in steps], judge.__name__
            continue
        first, second = (t(packed) for t in tests)
        for e1, s in enumerate(steps):
            out = range(packed.out_start[packed.dst[e1]], packed.out_start[packed.dst[e1] + 1])
            for e2 in out:
                assert bool(first[e1] and second[e2]) == judge(plat, [s, steps[e2]], 0), judge.__name__


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("bound", [40, 128])
def test_shortest_traces_are_the_reference_explorers(policy: Policy, bound: int) -> None:
    packed, reference = explore_packed(policy, Instance(64, bound)), explore(policy, Instance(64, bound))
    dist = nx.single_source_shortest_path_length(reference.graph, reference.initial)
    plat = reference.instance.platform
    for judge, tests in EDGE_TESTS.items():
        # The reference explorer's search (properties.binder before the packed explorer), judged edge by edge.
        candidates = []
        for u, v, s in reference.steps():
            if len(tests) == 2:
                after = reference.graph.out_edges(v, data="step")
                candidates += [(u, [s, r]) for _, _, r in after if judge(plat, [s, r], 0)]
            elif judge(plat, [s], 0):
                candidates.append((u, [s]))
        if len(tests) == 2:
            edges = packed.shortest_pair(tests[0](packed), tests[1](packed))
        else:
            edges = packed.shortest(tests[0](packed))
        if not candidates:
            assert edges is None
            continue
        start, tail = min(candidates, key=lambda c: dist[c[0]] + len(c[1]))
        expected = reference.path_to(start) + tail
        assert edges is not None
        assert _hops(packed, edges) == [(canonical(s.pre), s.action) for s in expected], judge.__name__


def test_paths_to_every_node_are_networkx_paths() -> None:
    packed = explore_packed(policy_named("naive"), Instance(64, 40))
    reference = explore(policy_named("naive"), Instance(64, 40))
    nodes = list(reference.graph.nodes)
    for target in range(0, packed.states, 7):
        ours = _hops(packed, packed.path_to(target))
        theirs = [(canonical(s.pre), s.action) for s in reference.path_to(nodes[target])]
        assert ours == theirs


@pytest.mark.parametrize("policy", [*POLICIES, THRASHING], ids=lambda p: p.name)
def test_cycles_and_the_worst_case_table_are_the_reference_explorers(policy: Policy) -> None:
    packed, _ = _pair(policy, 16)
    reference = explore(policy, Instance(64, 16))
    assert packed.worst_reallocations(16) == worst_reallocations(reference, 16)
    cycle = packed.realloc_cycle()
    expected = realloc_cycle(reference)
    if expected is None:
        assert cycle is None
    else:
        assert cycle is not None
        assert _hops(packed, cycle) == [(canonical(s.pre), s.action) for s in expected]


@pytest.mark.parametrize("bound", [0, MAX_CAPACITY + 1])
def test_a_bound_out_of_range_is_refused(bound: int) -> None:
    with pytest.raises(ValueError, match="capacity bound"):
        explore_packed(policy_named("v6"), Instance(64, bound))


def test_seeded_faults_are_left_to_the_reference_explorer() -> None:
    with pytest.raises(ValueError, match="seeded faults"):
        explore_packed(with_faults(policy_named("v6"), frozenset({"copy-one-short"})), Instance(64, 16))


# Rules of the policy language the packed explorer computes over whole arrays: a wrapped target
# (len - 1 when the last process leaves), a division by a variable, min/max and the logic operators.
DEFINED = [
    Policy.define("wraps", "len < cap/4 => len - 1"),
    Policy.define("mixed", "len <= cap/3 && (cap % 4 == 0 || len == 0) => max(len*2, min(cap/2, 3))"),
    Policy.define("divides", "len > 0 && cap / len > 4 => cap / (len + 1)"),
]


@pytest.mark.parametrize("policy", DEFINED, ids=lambda p: p.name)
def test_defined_policies_explore_as_the_reference_explorer(policy: Policy) -> None:
    packed, reference = _pair(policy, 40)
    for name in ARRAYS:
        assert np.array_equal(getattr(packed, name), getattr(reference, name)), name


def test_the_graph_is_the_same_when_the_visited_table_grows_at_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # From 16 slots, the table is moved into a larger one again and again while bound 40 is explored.
    monkeypatch.setattr(packed, "FIRST_TABLE_SLOTS", 16)
    grown, reference = _pair(policy_named("v6"), 40)
    for name in ARRAYS:
        assert np.array_equal(getattr(grown, name), getattr(reference, name)), name


@pytest.mark.parametrize("policy", [policy_named("v6"), THRASHING], ids=lambda p: p.name)
def test_the_compiled_passes_over_the_edges_are_the_numpy_ones(policy: Policy) -> None:
    # Bound 256: tens of thousands of states, beyond what the reference explorer is asked to do above.
    g = explore_packed(policy, Instance(64, 256))
    by_count = np.concatenate([[0], np.cumsum(np.bincount(g.src, minlength=g.states))])
    assert np.array_equal(g.out_start, by_count)
    assert np.array_equal(g.shrank(), g.layout[g.dst] < g.layout[g.src])
    assert np.array_equal(g.shrink_refused(), g.flag(FLAG_SHRINK_OK) & (g.layout[g.dst] == g.layout[g.src]))
    # The worst-case table as k passes of numpy's reduceat (the table before it was compiled).
    gain, best, table = g.reallocates().astype(np.int64), np.zeros(g.states, dtype=np.int64), []
    has_out = g.out_start[1:] > g.out_start[:-1]
    for _ in range(16):
        nxt = np.zeros(g.states, dtype=np.int64)
        nxt[has_out] = np.maximum.reduceat(gain + best[g.dst], g.out_start[:-1][has_out])
        best = nxt
        table.append(int(best.max()))
    assert g.worst_reallocations(16) == table
    realloc = g.reallocates()
    sub = nx.DiGraph(zip(g.src[realloc].tolist(), g.dst[realloc].tolist(), strict=True))
    assert (g.realloc_cycle() is None) == nx.is_directed_acyclic_graph(sub)


def test_a_cache_compiled_with_other_constants_is_dropped() -> None:
    # numba does not see a change of the constants packed_kernel.py imports; its own check does.
    from verify.search import packed_kernel

    assert not packed_kernel.refresh_if_stale()
    assert packed_kernel.refresh_if_stale((0,) * len(packed_kernel.IMPORTED))  # as if compiled with others
    packed, reference = _pair(policy_named("v6"), 40)  # compiled afresh
    for name in ARRAYS:
        assert np.array_equal(getattr(packed, name), getattr(reference, name)), name
    assert not packed_kernel.refresh_if_stale()
