"""Properties of binder's all_procs under each shrink policy, over operation sequences.

Each property names its method: the explicit-state explorer (exhaustive on a
small instance), bounded model checking from the empty list (PROVED up to k
steps), Z3 over every state (one operation from any state satisfying the type
invariants), or induction (every sequence). Every violation is a trace of
operations, replayed on the Python model before it is reported; `violated` is
the Python judge of such a trace. A trace starts from `KVVec::new()`, or, for
a violation the solver found from an arbitrary pre-state (single-operation
proofs, the induction step), from that pre-state; BMC from `KVVec::new()`
(`from_new`) then says whether such a violation is reachable.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import z3

from models import binder_z3
from models.allocator import Outcome, kmalloc_physical
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, BinderAction, BinderStep, Deregister, Policy, Register, binder_step
from models.binder_z3 import SymBinderStep
from models.catalogue import ModelSpec
from models.machine import PAGE_SIZES, Platform
from models.vec import VecState
from models.vec_z3 import SymPlatform, SymVec, type_invariant
from properties.base import Verdict
from properties.shrink import state_equal_py, state_equal_z3
from verify.search.deepening import Reached, deepening
from verify.search.explorer import Instance, canonical, explore
from verify.search.sequences import Unrolling, actions_from_model, bmc, induction_step, reaches, state_from_model
from verify.search.solver import Answer, Solving, any_of, conjuncts, fresh_context, minimal_model, solve

if TYPE_CHECKING:
    from verify.search.packed_graph import Bools, PackedGraph

INSTANCE = Instance(page_size=64, max_capacity=40)  # the default; `verify run --max-capacity N` sets another
EXPLORER_PAGE_SIZES = (64, *PAGE_SIZES)  # the pages a binder trace may have (verify.traces.trace_input)
# The instance the explicit-state properties explore, set for a check by `explored_instance`.
_EXPLORED: ContextVar[Instance] = ContextVar("explored instance", default=INSTANCE)
# `never` never shrinks: properties about what follows a shrink say nothing about it.
SHRANK_THEN_REGISTERS = "a deregistration that shrank the list, then a registration"
BMC_DEPTH = 8  # the default; `verify run --bmc-depth K` sets another
INDUCTION_DEPTH = 2  # the largest k tried for k-induction once BMC finds no violation
WORST_CASE_K = 16


@dataclass(frozen=True)
class Finding:
    """What a sequence check found: a verdict, what it covers, and a violating trace if any."""

    verdict: Verdict
    scope: str
    actions: tuple[BinderAction, ...] = ()
    page_size: int = 4096
    mark: int | None = None  # for a cycle: the index of its first operation
    detail: str = ""
    undecided: bool = False  # a query behind the verdict timed out: it may be decided another time
    # The state the trace starts from when the solver chose it (any state
    # satisfying the type invariants); None: `KVVec::new()`.
    start: VecState | None = None


@dataclass(frozen=True)
class SequenceProperty:
    id: str
    statement: str
    method: str
    # (policy, the platform or a page size for its default preset, how to solve, BMC depth)
    check: Callable[[Policy, Platform | int, Solving, int], Finding]
    violated: Callable[[Platform, list[BinderStep], int], bool]  # Python judge of a replayed trace
    expect_violated_on: frozenset[str] = frozenset()
    explanation: str = ""
    metrics: Callable[[Policy], str] | None = field(default=None)
    # The situation the property is about, checked by the same method once the
    # property holds: SAT (it happens), UNSAT (it never does: the proof is
    # vacuous) or UNKNOWN. None where every state has it (any deregistration).
    premise: Callable[[Policy, Platform | int, Solving, int], Answer] | None = None
    premise_text: str = ""
    # Policies the property says nothing about (its premise never happens there).
    not_for: frozenset[str] = frozenset()
    # For a property checked from arbitrary states: the same violation as a BMC
    # predicate, to look for it from `KVVec::new()` once one is found.
    from_new: JudgedPredicate | None = None
    # False: about the rule of a policy-language definition, which a model read from source does not have.
    on_source: bool = True

    def applies(self, model: ModelSpec) -> bool:
        # The explorer runs on its own fixed instance (INSTANCE: 64-byte pages), whatever the run's platform:
        # a binder model bound to a platform preset gets only the checks that use the platform.
        fixed_instance = self.method == "explicit-state" and model.platform is not None
        on = self.on_source or model.source is None
        return model.policy is not None and model.policy not in self.not_for and not fixed_instance and on

    def expect_violated(self, model: ModelSpec) -> bool:
        return model.policy in self.expect_violated_on


def replay(
    plat: Platform, policy: Policy, actions: tuple[BinderAction, ...], start: VecState | None = None
) -> list[BinderStep]:
    """Run a trace of operations from `start` (`KVVec::new()` by default) on the Python model."""
    state, steps = start or VecState(), []
    for action in actions:
        taken = binder_step(plat, policy, state, action)
        steps.append(taken)
        state = taken.post
    return steps


def concrete_actions(plat: Platform, policy: Policy, steps: list[BinderStep]) -> tuple[BinderAction, ...]:
    """The explorer's canonical steps as operations on real, distinct process identities."""
    state, actions, fresh = VecState(), [], 0
    for s in steps:
        action: BinderAction
        if isinstance(s.action, Register):
            action = Register(fresh, s.action.outcome)
            fresh += 1
        else:
            action = Deregister(state.elems.at(0), s.action.outcome)
        actions.append(action)
        state = binder_step(plat, policy, state, action).post
    return tuple(actions)


# --- Python judges of a trace's last operation(s) ------------------------------


def shrink_refused(s: BinderStep) -> bool:
    """The policy asked for a shrink, shrink_to returned Ok, and nothing changed: the vmalloc page rule."""
    return s.shrink_attempted and s.steps[-1].ok and s.post.layout_len == s.steps[-1].pre.layout_len


def shrink_failed(s: BinderStep) -> bool:
    return s.shrink_attempted and not s.steps[-1].ok


def shrank_then_registers(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    """regrow's premise: a deregistration that shrank the list, followed by a registration."""
    if len(steps) < 2:
        return False
    d, r = steps[-2], steps[-1]
    return isinstance(d.action, Deregister) and d.shrank and isinstance(r.action, Register)


def regrow(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    if len(steps) < 2:
        return False
    d, r = steps[-2], steps[-1]
    return isinstance(d.action, Deregister) and d.shrank and isinstance(r.action, Register) and r.reallocates


def waste(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    return wasteful(plat, steps, 4)


def wasteful(plat: Platform, steps: list[BinderStep], c: int) -> bool:
    """The last operation is a deregistration, its shrink neither failed nor refused, leaving capacity >= c*(len+1)."""
    s = steps[-1] if steps else None
    if s is None or not isinstance(s.action, Deregister) or shrink_failed(s) or shrink_refused(s):
        return False
    return s.post.capacity(plat) >= c * (s.post.len + 1)


def reclaim_bound(plat: Platform, n: int) -> int:
    """What a fresh kmalloc of the waste bound, 4 * (n + 1) elements, holds."""
    return kmalloc_physical(plat, 4 * (n + 1) * ELEM_SIZE)


def reclaim(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    s = steps[-1] if steps else None
    if s is None or not isinstance(s.action, Deregister) or shrink_failed(s):
        return False
    return s.post.physical() > reclaim_bound(plat, s.post.len)


def thrash(plat: Platform, steps: list[BinderStep], mark: int) -> bool:
    cycle = steps[mark:]
    closes = bool(cycle) and canonical(cycle[0].pre) == canonical(cycle[-1].post)
    return closes and all(s.reallocates for s in cycle)


def keeps_others(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    s = steps[-1] if steps else None
    if s is None or not isinstance(s.action, Deregister):
        return False
    return s.post.elems != s.pre.elems.without(s.action.pid)


def failed_register(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    s = steps[-1] if steps else None
    return s is not None and isinstance(s.action, Register) and not s.ok and not state_equal_py(s.pre, s.post)


def arithmetic_faulted(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    """The last operation was a deregistration whose policy rule wrapped or divided by zero."""
    return bool(steps) and steps[-1].arithmetic_fault is not None


def breaks_invariant(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    """The last operation left a state that breaks the type invariants."""
    return bool(steps) and bool(steps[-1].post.invariant_violations(plat))


# --- explicit-state checks ------------------------------------------------------


@contextmanager
def explored_instance(instance: Instance) -> Iterator[None]:
    """The explicit-state properties explore `instance` while the block runs."""
    token = _EXPLORED.set(instance)
    try:
        yield
    finally:
        _EXPLORED.reset(token)


def exploration(policy: Policy) -> PackedGraph:
    """The explored graph of the instance in use (`explored_instance`)."""
    return _exploration(policy, _EXPLORED.get())


@cache
def _exploration(policy: Policy, instance: Instance) -> PackedGraph:
    """The explored graph, every edge of it replayed on the Python model and checked against the Z3 encoding
    before any verdict uses it.

    The packed explorer runs the kernel's rules; a policy with seeded Vec, allocator or operation faults,
    or one read from source (its operations are the source interpreter's), is explored by the reference
    explorer, on the Python model itself.
    """
    # The explorers (and numpy) are imported here, not at the top: a run answered from the proof cache
    # explores nothing and does not load them.
    from verify.search.edges import check_explored_edges
    from verify.search.packed import explore_packed
    from verify.search.packed_graph import from_exploration

    reference = bool(policy.faults) or policy.source is not None
    ex = from_exploration(explore(policy, instance)) if reference else explore_packed(policy, instance)
    check_explored_edges(instance.platform, policy, ex.steps())
    return ex


def _scope(ex: PackedGraph) -> str:
    return f"explicit-state: {ex.states} states, {ex.edges} edges, {ex.instance.describe()}"


# The judges above, over every explored edge at once (tests/test_packed.py holds each to its judge).
EdgeTest = Callable[["PackedGraph"], "Bools"]


def _registering(ex: PackedGraph) -> Bools:
    return ex.is_register()


def _deregistering(ex: PackedGraph) -> Bools:
    return ~ex.is_register()


def _shrinking_deregistration(ex: PackedGraph) -> Bools:
    return _deregistering(ex) & ex.shrank()


def _reallocating_registration(ex: PackedGraph) -> Bools:
    return ex.is_register() & ex.reallocates()


def _wasteful(ex: PackedGraph) -> Bools:
    kept = _deregistering(ex) & ~ex.shrink_failed() & ~ex.shrink_refused()
    return kept & (ex.layout >= 4 * (ex.len + 1))[ex.dst]  # judged per state, then looked up per edge: less memory


def _over_reclaim_bound(ex: PackedGraph) -> Bools:
    import numpy as np

    plat = ex.instance.platform
    bound = np.array([reclaim_bound(plat, n) for n in range(int(ex.len.max()) + 1)], dtype=np.int64)
    return _deregistering(ex) & ~ex.shrink_failed() & (ex.physical > bound[ex.len])[ex.dst]


# judge -> (test of the last edge) or (test of the first, test of the second) of a violating pair
EDGE_TESTS: dict[Callable[[Platform, list[BinderStep], int], bool], tuple[EdgeTest, ...]] = {
    regrow: (_shrinking_deregistration, _reallocating_registration),
    shrank_then_registers: (_shrinking_deregistration, _registering),
    waste: (_wasteful,),
    reclaim: (_over_reclaim_bound,),
}


def _explored(policy: Policy, judge: Callable[[Platform, list[BinderStep], int], bool], pairs: bool) -> Finding:
    return explored_finding(exploration(policy), judge, pairs)


def explored_finding(ex: PackedGraph, judge: Callable[[Platform, list[BinderStep], int], bool], pairs: bool) -> Finding:
    """The shortest explored trace whose last operation (or pair) `judge` finds violating, if any."""
    policy = ex.policy
    tests = EDGE_TESTS[judge]
    assert (len(tests) == 2) == pairs
    edges = ex.shortest_pair(tests[0](ex), tests[1](ex)) if pairs else ex.shortest(tests[0](ex))
    if edges is None:
        return Finding(Verdict.PROVED, _scope(ex), page_size=ex.instance.page_size)
    plat = ex.instance.platform
    actions = concrete_actions(plat, policy, [ex.step(e) for e in edges])
    return Finding(Verdict.VIOLATED, _scope(ex), actions, ex.instance.page_size)


def _explored_happens(policy: Policy, judge: Callable[[Platform, list[BinderStep], int], bool], pairs: bool) -> Answer:
    """Whether some explored operation (or pair) satisfies `judge`: a premise's witness."""
    return Answer.SAT if _explored(policy, judge, pairs).verdict is Verdict.VIOLATED else Answer.UNSAT


def _explored_waste(policy: Policy) -> Finding:
    return waste_finding(exploration(policy))


def waste_finding(ex: PackedGraph) -> Finding:
    """The waste bound, and how much memory the page rule's refusals leave held beyond need."""
    found = explored_finding(ex, waste, pairs=False)
    refused = ex.dst[ex.shrink_refused()]
    if not len(refused):
        return dataclasses.replace(found, detail="the vmalloc page rule refused no shrink in the explored instance")
    beyond = int((ex.physical[refused] - ex.len[refused] * ELEM_SIZE).max())
    detail = f"where the page rule refused a shrink: at most {beyond} bytes held beyond the processes' own"
    return dataclasses.replace(found, detail=detail)


def check_thrash(policy: Policy, _page: Platform | int, _solving: Solving, _depth: int) -> Finding:
    return thrash_finding(exploration(policy))


def thrash_finding(ex: PackedGraph) -> Finding:
    """A reachable cycle of reallocating operations, or the worst-case table when there is none."""
    policy = ex.policy
    cycle = ex.realloc_cycle()
    if cycle is None:
        return Finding(Verdict.PROVED, _scope(ex), page_size=ex.instance.page_size, detail=thrash_metrics(ex))
    lead = ex.path_to(int(ex.src[cycle[0]]))
    actions = concrete_actions(ex.instance.platform, policy, [ex.step(e) for e in lead + cycle])
    return Finding(Verdict.VIOLATED, _scope(ex), actions, ex.instance.page_size, mark=len(lead))


def thrash_metrics(ex: PackedGraph) -> str:
    table = ex.worst_reallocations(WORST_CASE_K)
    return "worst-case reallocating operations among k consecutive, k=1..16: " + " ".join(map(str, table))


# --- Z3 checks --------------------------------------------------------------------


# A check's platform: a Platform (a model bound to a preset), or a page size for the default preset of that size.
PlatformOrPage = Platform | int


def _platform(page: PlatformOrPage) -> Platform:
    return page if isinstance(page, Platform) else Platform(ELEM_SIZE, page)


def _page(page: PlatformOrPage) -> int:
    return _platform(page).page_size


def _sym(page: PlatformOrPage) -> SymPlatform:
    return SymPlatform(_platform(page))


def _finding_from_bmc(
    policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate
) -> Finding:
    scope = _bmc_scope(page, solving, depth, bad)
    if not _incremental(solving, depth, bad):
        found = _bmc_once(policy, page, solving, depth, bad, bad.at, scope)
        if found.verdict is Verdict.PROVED:
            return _by_induction(_sym(page), policy, depth, bad.at, solving, scope)[0]
        return found
    # Deeper than the default, the induction step comes first: where it holds for k operations, the
    # base case is BMC of k operations, not of `depth`.
    proved, inductive_for = _by_induction(_sym(page), policy, depth, bad.at, solving, scope)
    search = deepening(_platform(page), policy, bad.by_retain)
    if inductive_for and search.first(bad.name, bad.at, inductive_for, solving.timeout_ms).answer is Answer.UNSAT:
        return proved
    reached = search.first(bad.name, bad.at, depth, solving.timeout_ms)
    found = _reached_finding(policy, page, solving, depth, bad, reached, scope)
    return proved if found.verdict is Verdict.PROVED else found


def _bmc_scope(page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate) -> str:
    """What BMC covers, and by which solver: the incremental search's queries are Bitwuzla's (deepening.py)."""
    how = "BMC by incremental unrolling (Bitwuzla, else Z3)" if _incremental(solving, depth, bad) else "z3 BMC"
    return f"{how} from KVVec::new(): up to {depth} operations, PAGE_SIZE {_page(page)} B"


def _reached_finding(
    policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate, reached: Reached,
    scope: str,
) -> Finding:
    """The finding of an incremental search; a violation's trace comes from a whole query, as at the default depth.

    The whole query of the default depth (or of the violation's own depth, when deeper) picks the
    counterexample, so a violation within the default depth has the trace the default depth gives.
    """
    if reached.answer is Answer.UNSAT:
        return Finding(Verdict.PROVED, scope, page_size=_page(page))
    if reached.answer is Answer.UNKNOWN:
        detail = f"operation {reached.at + 1} not decided ({reached.reason})"
        return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=detail)
    whole = min(depth, max(reached.at + 1, BMC_DEPTH))
    fresh_context()  # the whole query first in its context, as a check at the default depth asks it
    return _confirmed(_bmc_once(policy, page, solving, whole, bad, bad.at, scope), reached, whole)


def _confirmed(found: Finding, reached: Reached, whole: int) -> Finding:
    """The whole query's finding for a violation the incremental search reached: UNKNOWN if it has none.

    The search leaves the process identities out (verify.search.deepening), so
    a violation it finds is one only once a whole query over the model's own
    identities finds it too.
    """
    if found.verdict is not Verdict.PROVED:
        return found
    detail = f"a violation at operation {reached.at + 1} that no run of {whole} operations confirms"
    return dataclasses.replace(found, verdict=Verdict.UNKNOWN, detail=detail)


def _incremental(solving: Solving, depth: int, bad: JudgedPredicate) -> bool:
    """Whether BMC deepens one incremental solver (verify.search.deepening), or asks whole queries.

    Up to the default depth whole queries are faster: Z3 preprocesses a whole
    query (eliminating variables, then bit-blasting) in ways it cannot across
    push and pop. Deeper, a whole query grows out of reach (v6's
    no-immediate-regrow query of 16 operations had no answer after 25 minutes,
    where the incremental search finds its violation in seconds). Retain's
    unrolling (arrays of processes) stays with whole queries, and so does a run
    that dumps or confirms its queries: each is a file a second solver can read,
    as the proof it stands for.
    """
    whole = solving.dump_smt is not None or solving.second_solver is not None or bad.by_retain
    return depth > BMC_DEPTH and not whole


def bmc_from_new(policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate) -> Finding:
    """BMC from `KVVec::new()`, one depth after another: PROVED up to `depth` operations, or the shortest trace."""
    scope = _bmc_scope(page, solving, depth, bad)
    if not _incremental(solving, depth, bad):
        return _deepened_whole(policy, page, solving, depth, bad, scope)
    reached = deepening(_platform(page), policy, bad.by_retain).first(bad.name, bad.at, depth, solving.timeout_ms)
    if reached.answer is not Answer.SAT:
        return _reached_finding(policy, page, solving, depth, bad, reached, scope)
    # The shortest trace: the whole query of the first depth with a violation, for its last operation.
    found = _deepened_whole(policy, page, solving, reached.at + 1, bad, scope, first=reached.at + 1)
    return _confirmed(found, reached, reached.at + 1)


def _deepened_whole(
    policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate, scope: str,
    first: int = 1,
) -> Finding:
    """BMC by a whole query per depth from `first`, each unrolled from scratch, for the last operation alone.

    Deepening one operation at a time finds a shallow violation without
    unrolling the full depth, which for retain's unrolling is slow.
    """
    deadline = time.perf_counter() + solving.timeout_ms / 1000
    for k in range(first, depth + 1):
        remaining = int((deadline - time.perf_counter()) * 1000)
        if remaining <= 0:
            return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=f"timeout after {k - 1} operations")

        def last(sp: SymPlatform, u: Unrolling, i: int, k: int = k) -> Any:
            return bad.at(sp, u, i) if i == k - 1 else z3.BoolVal(False)  # shallower ones are already refuted

        found = _bmc_once(policy, page, dataclasses.replace(solving, timeout_ms=remaining), k, bad, last, scope)
        if found.verdict is not Verdict.PROVED:
            return found
    return Finding(Verdict.PROVED, scope, page_size=_page(page))


def _bmc_once(
    policy: Policy,
    page: PlatformOrPage,
    solving: Solving,
    depth: int,
    bad: JudgedPredicate,
    at: Callable[..., Any],
    scope: str,
) -> Finding:
    """One BMC query of `depth` operations for `at`; a violation comes with its shortest replayed prefix."""
    sp = _sym(page)
    judge = bad.judge
    solved, u = bmc(sp, policy, depth, at, solving, bad.by_retain)
    if solved.answer is Answer.UNSAT:
        return Finding(Verdict.PROVED, scope, page_size=_page(page))
    if solved.answer is Answer.UNKNOWN:
        return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=solved.reason)
    actions = actions_from_model(solved.model, u)
    steps = replay(sp.plat, policy, tuple(actions))
    # The shortest prefix whose last operation the Python judge finds violating.
    for end in range(1, len(steps) + 1):
        if judge(sp.plat, steps[:end], 0):
            return Finding(Verdict.VIOLATED, scope, tuple(actions[:end]), _page(page))
    return Finding(Verdict.VIOLATED, scope, tuple(actions), _page(page))  # the engine's replay rejects it


def _by_induction(
    sp: SymPlatform, policy: Policy, depth: int, bad_at: Callable[[SymPlatform, Unrolling, int], Any], solving: Solving,
    bmc_scope: str,
) -> tuple[Finding, int]:
    """Once BMC finds no violation in `depth` operations: PROVED for every sequence if k-inductive, and that k
    (0 when none is).

    The BMC is the base case for every k <= depth; the first k whose step case
    holds proves the property for sequences of any length. Otherwise the
    verdict stays PROVED up to `depth` operations, and says so.
    """
    page = sp.plat.page_size
    for k in range(1, min(depth, INDUCTION_DEPTH) + 1):
        step = induction_step(sp, policy, k, bad_at, solving)
        if step.answer is Answer.UNSAT:
            scope = f"z3 {k}-induction, base case by BMC: every sequence of operations, PAGE_SIZE {_page(page)} B"
            return Finding(Verdict.PROVED, scope, page_size=_page(page)), k
        if step.answer is Answer.UNKNOWN:
            detail = f"{k}-induction step not decided ({step.reason})"
            return Finding(Verdict.PROVED, bmc_scope, page_size=_page(page), detail=detail, undecided=True), 0
    tried = min(depth, INDUCTION_DEPTH)
    return Finding(Verdict.PROVED, bmc_scope, page_size=_page(page), detail=f"not k-inductive for k <= {tried}"), 0


def _bmc_happens(policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate) -> Answer:
    """Whether `bad` holds at some operation of some sequence of `depth` operations from new().

    Deeper than the default depth, of some sequence of at most `depth` operations: the incremental
    search stops at the first witness, where a whole query of `depth` operations is out of reach.
    """
    if _incremental(solving, depth, bad):
        search = deepening(_platform(page), policy, bad.by_retain)
        return search.first(bad.name, bad.at, depth, solving.timeout_ms).answer
    return reaches(_sym(page), policy, depth, bad.at, solving, model_needed=False)[0].answer


def shrank_then_registers_at(sp: SymPlatform, u: Unrolling, i: int) -> Any:
    if i == 0:
        return z3.BoolVal(False)
    d = u.steps[i - 1]
    return z3.And(z3.Not(u.is_register[i - 1]), z3.ULT(d.post.layout_len, d.pre.layout_len), u.is_register[i])


def regrow_bad(sp: SymPlatform, u: Unrolling, i: int) -> Any:
    if i == 0:
        return z3.BoolVal(False)
    d, r = u.steps[i - 1], u.steps[i]
    shrank = z3.ULT(d.post.layout_len, d.pre.layout_len)
    return z3.And(z3.Not(u.is_register[i - 1]), shrank, u.is_register[i], r.reallocates)


def waste_bad(sp: SymPlatform, u: Unrolling, i: int) -> Any:
    return wasteful_at(sp, u, i, 4)


def wasteful_at(sp: SymPlatform, u: Unrolling, i: int, c: int) -> Any:
    """`wasteful` over BMC's unrolling: operation i leaves capacity >= c*(len+1)."""
    s = u.steps[i]
    failed = z3.And(s.shrink_attempted, z3.Not(s.shrink_ok))
    refused = z3.And(s.shrink_attempted, s.shrink_ok, z3.Not(s.reallocates))
    cap, n = sp.capacity(s.post), s.post.len
    # Wide enough that c * (len + 1) cannot wrap (len is below 2^61 by the type invariants); binder.waste-bound's
    # own query (c = 4) keeps the two bits it always had.
    wide = 2 if c <= 4 else c.bit_length()
    too_big = z3.UGE(z3.ZeroExt(wide, cap), c * (z3.ZeroExt(wide, n) + 1))
    return z3.And(z3.Not(u.is_register[i]), z3.Not(failed), z3.Not(refused), too_big)


@dataclass(frozen=True)
class JudgedPredicate:
    """A Z3 predicate over an unrolling that BMC checks, and the Python judge of a trace it stands for."""

    name: str
    judge: Callable[[Platform, list[BinderStep], int], bool]
    at: Callable[[SymPlatform, Unrolling, int], Any]
    by_retain: bool = False  # unroll deregistrations with retain of a chosen process (sequences.unroll)


def waste_over(c: int) -> JudgedPredicate:
    """The waste bound with the factor c: binder.waste-bound's predicate is waste_over(4)'s."""
    return JudgedPredicate(f"waste-{c}", lambda plat, steps, _mark: wasteful(plat, steps, c),
                           lambda sp, u, i: wasteful_at(sp, u, i, c))


def shrinks_to_room(plat: Platform, steps: list[BinderStep], r: int) -> bool:
    """The last operation is a deregistration that shrank the list, leaving fewer than r free slots."""
    s = steps[-1] if steps else None
    if s is None or not isinstance(s.action, Deregister) or not s.shrank:
        return False
    return s.post.capacity(plat) - s.post.len < r


def shrinks_to_room_at(sp: SymPlatform, u: Unrolling, i: int, r: int) -> Any:
    """`shrinks_to_room` over BMC's unrolling, at operation i (widened: capacity - len cannot wrap)."""
    s = u.steps[i]
    cap, n = z3.ZeroExt(1, sp.capacity(s.post)), z3.ZeroExt(1, s.post.len)
    shrank = z3.ULT(s.post.layout_len, s.pre.layout_len)
    return z3.And(z3.Not(u.is_register[i]), shrank, z3.ULT(cap, n + r))


def room_under(r: int) -> JudgedPredicate:
    """A shrink that leaves fewer than r free slots: never holding, every shrink leaves at least r."""
    return JudgedPredicate(f"room-under-{r}", lambda plat, steps, _mark: shrinks_to_room(plat, steps, r),
                           lambda sp, u, i: shrinks_to_room_at(sp, u, i, r))


def bmc_then_induction(
    policy: Policy, page: PlatformOrPage, solving: Solving, depth: int, bad: JudgedPredicate
) -> Finding:
    """BMC of `bad` from `KVVec::new()` up to `depth` operations, then k-induction: the .bmc properties' method."""
    return _finding_from_bmc(policy, page, solving, depth, bad)


REGROW = JudgedPredicate("regrow", regrow, regrow_bad)
WASTE = JudgedPredicate("waste", waste, waste_bad)
SHRANK_THEN_REGISTERS_AT = JudgedPredicate("shrank-then-registers", shrank_then_registers, shrank_then_registers_at)
# The stateful cross-check (verify/check/stateful.py) holds each pair to the same verdict on random operations.
JUDGED_PREDICATES = (REGROW, WASTE, SHRANK_THEN_REGISTERS_AT)


def _fresh_pre(page: PlatformOrPage, ghost: bool = True) -> tuple[SymPlatform, SymVec, list[Any]]:
    sp = _sym(page)
    pre = binder_z3.any_state("pre")
    return sp, pre, [type_invariant(sp, pre, ghost)]


def _single_step_happens(
    policy: Policy, page: PlatformOrPage, solving: Solving, premise: Callable[[SymPlatform, SymVec], list[Any]]
) -> Answer:
    """Whether one operation from some state satisfying the type invariants reaches `premise`."""
    sp, pre, assumptions = _fresh_pre(page)
    return solve([*assumptions, *premise(sp, pre)], solving, model_needed=False).answer


@dataclass(frozen=True)
class SymOperation:
    """The operation of a single-step query: a registration or not, the process, the allocator outcome."""

    register: Any  # a Z3 Boolean
    pid: Any
    outcome: SymOutcome


# One case of a negated one-operation claim: its constraints and the operation they are about.
Case = tuple[list[Any], SymOperation]


def _single_step(
    policy: Policy, page: PlatformOrPage, solving: Solving, claim: Callable[[SymPlatform, SymVec], list[Case]]
) -> Finding:
    """Prove a one-operation claim; `claim` gives the negated claim as cases, each its own query.

    A case the solver satisfies is a violation from an arbitrary pre-state:
    the pre-state and the operation are read back from its model.
    """
    sp, pre, assumptions = _fresh_pre(page)
    scope = f"z3: one operation from every state, all 64-bit values, PAGE_SIZE {_page(page)} B"
    for constraints, operation in claim(sp, pre):
        query = [*assumptions, *constraints]
        solved = solve(query, solving, model_needed=False)
        if solved.answer is Answer.UNKNOWN:
            return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=solved.reason)
        if solved.answer is Answer.SAT:
            return _violation_from_model(query, pre, operation, scope, page, solving)
    return Finding(Verdict.PROVED, scope, page_size=_page(page))


def _violation_from_model(
    query: list[Any],
    pre: SymVec,
    operation: SymOperation,
    scope: str,
    page: PlatformOrPage,
    solving: Solving,
) -> Finding:
    """The pre-state and operation of a satisfied single-step query, as a Finding that starts there.

    Allocation identities are only compared for equality, so a model with the
    canonical ones (the buffer 1, the next allocation 2) is asked for first,
    the smallest list, process and object first, allocations that succeed unless
    failure is needed, for a readable trace; the first model of `query` (satisfiable) otherwise.
    """
    canonical = [*query, z3.Implies(pre.buf.live, pre.buf.id == 1), pre.next_id == 2]
    canonical_solved = solve(canonical, solving, model_needed=False)
    if canonical_solved.answer is Answer.UNKNOWN:
        # The raw model's identities need not satisfy the Python model's ghost invariants: no trace, no verdict.
        detail = f"a violation found, but its canonical pre-state not decided: {canonical_solved.reason}"
        return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=detail, undecided=True)
    if canonical_solved.answer is Answer.SAT:
        o = operation.outcome
        objectives = [pre.layout_len, pre.len, operation.pid, pre.buf.physical]
        objectives += [z3.Not(o.kmalloc_ok), z3.Not(o.vmalloc_ok)]
        m = minimal_model(canonical, objectives, solving) or _model(canonical, solving)
    else:
        m = _model(query, solving)
    if m is None:
        detail = "a violation found, but no model of it from z3"
        return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=detail, undecided=True)
    outcome = Outcome(
        z3.is_true(m.eval(operation.outcome.kmalloc_ok, True)), z3.is_true(m.eval(operation.outcome.vmalloc_ok, True))
    )
    pid = int(m.eval(operation.pid, True).as_long())
    action: BinderAction = Register(pid, outcome) if z3.is_true(m.eval(operation.register, True)) else Deregister(
        pid, outcome
    )
    return Finding(Verdict.VIOLATED, scope, (action,), _page(page), start=state_from_model(m, pre))


def _model(query: list[Any], solving: Solving) -> Any | None:
    """Z3's model of a query found satisfiable, asked for only when a trace is read from it."""
    return solve(query, solving).model


def _deregistration(pid: Any) -> SymOperation:
    return SymOperation(z3.BoolVal(False), pid, SymOutcome.fresh("outcome"))


def _registration(pid: Any) -> SymOperation:
    return SymOperation(z3.BoolVal(True), pid, SymOutcome.fresh("outcome"))


def check_keeps_others(policy: Policy, page: PlatformOrPage, solving: Solving, _depth: int) -> Finding:
    def negated(sp: SymPlatform, pre: SymVec) -> list[Case]:
        op = _deregistration(z3.BitVec("pid", 64))
        pid = op.pid
        st = binder_z3.deregister(sp, policy, pre, pid, op.outcome, "dereg")
        k = z3.BitVec("k", 64)
        present = z3.ULT(pid, pre.len)  # the pre-state's identities are 0..len-1
        shifted = z3.And(
            st.post.len == pre.len - 1,
            z3.Implies(z3.ULT(k, st.post.len), st.post.elems[k] == z3.If(z3.ULT(k, pid), k, k + 1)),
        )
        unchanged = z3.And(st.post.len == pre.len, z3.Implies(z3.ULT(k, pre.len), st.post.elems[k] == k))
        # Two cases, two queries: retain's "not found" is a quantifier, and alone it is quick to refute.
        return [
            ([*st.constraints, present, z3.Not(shifted)], op),
            ([*st.constraints, z3.Not(present), z3.Not(unchanged)], op),
        ]

    return _single_step(policy, page, solving, negated)


def keeps_others_bad(sp: SymPlatform, u: Unrolling, i: int) -> Any:
    """Deregistration i (by retain, from new(): distinct processes) did not remove exactly its process."""
    s, at = u.steps[i], u.removed_at[i]
    k = z3.BitVec(f"op{i}.k", 64)
    shifted = z3.And(
        s.post.len == s.pre.len - 1,
        z3.Implies(z3.ULT(k, s.post.len), s.post.elems[k] == z3.If(z3.ULT(k, at), s.pre.elems[k], s.pre.elems[k + 1])),
    )
    return z3.And(z3.Not(u.is_register[i]), z3.Not(shifted))


def failed_register_bad(st: SymBinderStep) -> Any:
    """A registration failed and changed the list (for some index: the index is a free variable)."""
    return z3.Not(z3.Implies(z3.Not(st.ok), state_equal_z3(st.pre, st.post)))


def check_failed_register(policy: Policy, page: PlatformOrPage, solving: Solving, _depth: int) -> Finding:
    def negated(sp: SymPlatform, pre: SymVec) -> list[Case]:
        op = _registration(z3.BitVec("pid", 64))
        st = binder_z3.register(sp, pre, op.pid, op.outcome, "reg", policy)
        return [([*st.constraints, failed_register_bad(st)], op)]

    return _single_step(policy, page, solving, negated)


def _vmalloc_shrink_asked(policy: Policy) -> Callable[[SymPlatform, SymVec], list[Any]]:
    """page-rule-never-refuses' premise: the policy asks a vmalloc buffer to shrink."""

    def premise(sp: SymPlatform, pre: SymVec) -> list[Any]:
        st = binder_z3.deregister(sp, policy, pre, z3.BitVec("pid", 64), SymOutcome.fresh("outcome"), "dereg")
        return [*st.constraints, st.shrink_attempted, pre.buf.live, pre.buf.vmalloc]

    return premise


def _dereg_with_others(policy: Policy) -> Callable[[SymPlatform, SymVec], list[Any]]:
    """keeps-others' premise: a registered process leaves while another one stays registered."""

    def premise(sp: SymPlatform, pre: SymVec) -> list[Any]:
        pid = z3.BitVec("pid", 64)
        st = binder_z3.deregister(sp, policy, pre, pid, SymOutcome.fresh("outcome"), "dereg")
        return [*st.constraints, z3.ULT(pid, pre.len), z3.UGE(pre.len, 2)]

    return premise


def _buffer_changes(policy: Policy) -> Callable[[SymPlatform, SymVec], list[Any]]:
    """invariant-forever's premise: an operation changes the buffer (where the invariants are at stake)."""

    def premise(sp: SymPlatform, pre: SymVec) -> list[Any]:
        outcome = SymOutcome.fresh("outcome")
        reg = binder_z3.register(sp, pre, pre.next_id + 1000, outcome, "reg", policy)
        dereg = binder_z3.deregister(sp, policy, pre, z3.BitVec("pid", 64), outcome, "dereg")
        return [*reg.constraints, *dereg.constraints, z3.Or(reg.reallocates, dereg.reallocates)]

    return premise


def _register_fails(policy: Policy) -> Callable[[SymPlatform, SymVec], list[Any]]:
    """failed-register-unchanged's premise: a registration fails."""

    def premise(sp: SymPlatform, pre: SymVec) -> list[Any]:
        st = binder_z3.register(sp, pre, z3.BitVec("pid", 64), SymOutcome.fresh("outcome"), "reg", policy)
        return [*st.constraints, z3.Not(st.ok)]

    return premise


def refused_bad(st: SymBinderStep) -> Any:
    """The policy asked for a shrink, shrink_to returned Ok, and the buffer stayed: the page rule refused."""
    return z3.And(st.shrink_attempted, st.shrink_ok, z3.Not(st.reallocates))


def check_never_refused(policy: Policy, page: PlatformOrPage, solving: Solving, _depth: int) -> Finding:
    def negated(sp: SymPlatform, pre: SymVec) -> list[Case]:
        op = _deregistration(z3.BitVec("pid", 64))
        st = binder_z3.deregister(sp, policy, pre, op.pid, op.outcome, "dereg")
        return [([*st.constraints, refused_bad(st)], op)]

    return _single_step(policy, page, solving, negated)


def check_policy_arithmetic(policy: Policy, page: PlatformOrPage, solving: Solving, _depth: int) -> Finding:
    def negated(sp: SymPlatform, pre: SymVec) -> list[Case]:
        op = _deregistration(z3.BitVec("pid", 64))
        st = binder_z3.deregister(sp, policy, pre, op.pid, op.outcome, "dereg")
        return [([*st.constraints, st.arithmetic_fault], op)]

    return _single_step(policy, page, solving, negated)


def refused(plat: Platform, steps: list[BinderStep], _mark: int) -> bool:
    return bool(steps) and shrink_refused(steps[-1])


@dataclass(frozen=True)
class OneStepPredicate:
    """A violation of one operation that a single-step proof refutes, and its Python judge.

    `at` may leave a variable free (an index): it holds when some value makes it true.
    """

    name: str
    judge: Callable[[Platform, list[BinderStep], int], bool]
    at: Callable[[SymBinderStep], Any]
    operation: type  # Register or Deregister: the operations it is about


# The stateful cross-check holds each to its judge's verdict on every such operation.
ONE_STEP_PREDICATES = (
    OneStepPredicate("failed-register-changes", failed_register, failed_register_bad, Register),
    OneStepPredicate("page-rule-refuses", refused, refused_bad, Deregister),
    OneStepPredicate("policy-arithmetic-fault", arithmetic_faulted, lambda st: st.arithmetic_fault, Deregister),
)

# The same violations over BMC's unrolling, looked for from KVVec::new() once
# a single-step proof (or the induction step) finds one from an arbitrary state.
KEEPS_OTHERS_FROM_NEW = JudgedPredicate("keeps-others", keeps_others, keeps_others_bad, by_retain=True)
FAILED_REGISTER_FROM_NEW = JudgedPredicate(
    "failed-register-changes", failed_register, lambda sp, u, i: failed_register_bad(u.steps[i])
)
REFUSED_FROM_NEW = JudgedPredicate("page-rule-refuses", refused, lambda sp, u, i: refused_bad(u.steps[i]))
ARITHMETIC_FROM_NEW = JudgedPredicate(
    "policy-arithmetic-fault", arithmetic_faulted, lambda sp, u, i: u.steps[i].arithmetic_fault
)
INVARIANT_FROM_NEW = JudgedPredicate(
    "invariant-broken", breaks_invariant, lambda sp, u, i: z3.Not(type_invariant(sp, u.states[i + 1], ghost=False))
)


def check_invariant(policy: Policy, page: PlatformOrPage, solving: Solving, _depth: int) -> Finding:
    """Induction: new() satisfies the type invariants, and every operation keeps them."""
    sp, pre, assumptions = _fresh_pre(page, ghost=False)
    scope = f"z3 induction: every sequence of operations, PAGE_SIZE {_page(page)} B"
    base = solve([z3.Not(type_invariant(sp, binder_z3.initial(), ghost=False))], solving)
    if base.answer is not Answer.UNSAT:
        # new() itself breaks them: no operation to replay, so no trace; a fault of the model, not of binder.
        detail = "KVVec::new() breaks the type invariants" if base.answer is Answer.SAT else base.reason
        return Finding(Verdict.VIOLATED if base.answer is Answer.SAT else Verdict.UNKNOWN, scope, page_size=_page(page),
                       detail=detail)
    is_register = z3.Bool("register")
    outcome = SymOutcome.fresh("outcome")
    pid = z3.BitVec("pid", 64)
    reg = binder_z3.register(sp, pre, pre.next_id + 1000, outcome, "reg", policy)
    dereg = binder_z3.deregister(sp, policy, pre, pid, outcome, "dereg")
    kept_reg, kept_dereg = type_invariant(sp, reg.post, ghost=False), type_invariant(sp, dereg.post, ghost=False)
    post = z3.If(is_register, z3.Not(kept_reg), z3.Not(kept_dereg))
    setting = [*assumptions, *reg.constraints, *dereg.constraints]
    query = [*setting, post]
    # Each operation's each invariant in a query of its own: the same proof in about half the solver time.
    broken = [z3.And(is_register, z3.Not(part)) for part in conjuncts(kept_reg)]
    broken += [z3.And(z3.Not(is_register), z3.Not(part)) for part in conjuncts(kept_dereg)]
    step = any_of(setting, broken, solving)
    if step.answer is Answer.UNSAT:
        return Finding(Verdict.PROVED, scope, page_size=_page(page))
    if step.answer is Answer.UNKNOWN:
        return Finding(Verdict.UNKNOWN, scope, page_size=_page(page), detail=step.reason)
    operation = SymOperation(is_register, z3.If(is_register, pre.next_id + 1000, pid), outcome)
    return _violation_from_model(query, pre, operation, scope, page, solving)


PROPERTIES: tuple[SequenceProperty, ...] = (
    SequenceProperty(
        "binder.no-immediate-regrow",
        "after a deregistration that shrank the list, the next registration does not reallocate",
        "explicit-state",
        lambda p, _page, _t, _d: _explored(p, regrow, pairs=True),
        regrow,
        frozenset({"v6", "naive"}),
        "v6 shrinks to len*2, which is 0 when the last process leaves: the buffer is freed and the next"
        " registration allocates again; naive shrinks to exactly len, so the next registration must grow",
        premise=lambda p, _page, _t, _d: _explored_happens(p, shrank_then_registers, pairs=True),
        premise_text=SHRANK_THEN_REGISTERS,
        not_for=frozenset({"never"}),
    ),
    SequenceProperty(
        "binder.no-immediate-regrow.bmc",
        "the same, by bounded model checking with the platform's pages from the empty list, then k-induction",
        "z3 BMC + k-induction",
        lambda p, page, t, d: _finding_from_bmc(p, page, t, d, REGROW),
        regrow,
        frozenset({"v6", "naive"}),
        "as above: v6 after its last process leaves (7 operations: register 3, deregister 3, register),"
        " naive after any shrink",
        premise=lambda p, page, t, d: _bmc_happens(p, page, t, d, SHRANK_THEN_REGISTERS_AT),
        premise_text=SHRANK_THEN_REGISTERS,
        not_for=frozenset({"never"}),
    ),
    SequenceProperty(
        "binder.keeps-others",
        "a deregistration keeps every other process, in order, whatever the allocator does",
        "z3: every state",
        check_keeps_others,
        keeps_others,
        premise=lambda p, page, t, _d: _single_step_happens(p, page, t, _dereg_with_others(p)),
        premise_text="a process leaves while another one stays registered",
        from_new=KEEPS_OTHERS_FROM_NEW,
    ),
    SequenceProperty(
        "binder.failed-register-unchanged",
        "a failed registration leaves the list unchanged",
        "z3: every state",
        check_failed_register,
        failed_register,
        premise=lambda p, page, t, _d: _single_step_happens(p, page, t, _register_fails(p)),
        premise_text="a registration fails",
        from_new=FAILED_REGISTER_FROM_NEW,
    ),
    SequenceProperty(
        "binder.policy-arithmetic",
        "the policy's rule never wraps a usize or divides by zero (Rust panics there with overflow checks on,"
        " and wraps without)",
        "z3: every state",
        check_policy_arithmetic,
        arithmetic_faulted,
        from_new=ARITHMETIC_FROM_NEW,
        # A source's arithmetic, the policy's included, is `verify source`'s wrap-around check.
        on_source=False,
    ),
    SequenceProperty(
        "binder.invariant-forever",
        "every sequence of registrations and deregistrations keeps the KVVec type invariants",
        "z3 induction",
        check_invariant,
        breaks_invariant,
        from_new=INVARIANT_FROM_NEW,
        premise=lambda p, page, t, _d: _single_step_happens(p, page, t, _buffer_changes(p)),
        premise_text="an operation changes the buffer",
    ),
    SequenceProperty(
        "binder.waste-bound",
        "after any deregistration, capacity < 4 * (len + 1), unless its shrink_to failed or the"
        " vmalloc page rule refused it",
        "explicit-state",
        lambda p, _page, _t, _d: _explored_waste(p),
        waste,
        frozenset({"v4", "never"}),
        "never does not shrink at all; v4 halves the capacity, so after the page rule or a failed"
        " allocation skipped earlier shrinks, one halving leaves far more than 4 * (len + 1)",
    ),
    SequenceProperty(
        "binder.waste-bound.bmc",
        "the same, by bounded model checking with the platform's pages from the empty list, then k-induction",
        "z3 BMC + k-induction",
        lambda p, page, t, d: _finding_from_bmc(p, page, t, d, WASTE),
        waste,
        frozenset({"never"}),
        "never does not shrink: registering processes until the capacity is 4, then deregistering them all, leaves"
        " capacity 4 with len 0",
    ),
    SequenceProperty(
        "binder.page-rule-never-refuses",
        "when the policy asks for a shrink, the vmalloc page rule never refuses it: every target is at most"
        " half the capacity, and a vmalloc buffer spans more than one page",
        "z3: every state",
        check_never_refused,
        refused,
        premise=lambda p, page, t, _d: _single_step_happens(p, page, t, _vmalloc_shrink_asked(p)),
        premise_text="the policy asks a vmalloc buffer to shrink",
        not_for=frozenset({"never"}),
        from_new=REFUSED_FROM_NEW,
    ),
    SequenceProperty(
        "binder.no-thrash",
        "no reachable cycle in which every operation reallocates",
        "explicit-state",
        check_thrash,
        thrash,
        metrics=lambda p: thrash_metrics(exploration(p)),
    ),
    SequenceProperty(
        "binder.reclaim",
        "after a deregistration whose shrink did not fail, the physical memory held is at most what a"
        " fresh kmalloc of 4 * (len + 1) processes takes: bounded by len, not by the peak",
        "explicit-state",
        lambda p, _page, _t, _d: _explored(p, reclaim, pairs=False),
        reclaim,
        frozenset({"v6", "v4", "naive", "never"}),
        "on the kmalloc path krealloc keeps the peak's object when shrinking, so a list that grew to"
        " N processes in kmalloc memory holds it after falling to any n; only vmalloc buffers are reclaimed",
    ),
)
