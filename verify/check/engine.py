"""Checks one property on one model and returns a verdict the solver computed.

A proof is the solver's UNSAT on (type invariants, transition, negated
property). A SAT answer becomes a counterexample only after it replays on the
Python reference model; one that does not is an internal error, never a
verdict. A timeout is UNKNOWN.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import z3

from models import vec_z3
from models.allocator import Allocation, Kind, Outcome
from models.allocator_z3 import SymOutcome
from models.binder import Policy, with_faults
from models.catalogue import ModelSpec
from models.elements import Elements
from models.elements_z3 import IndexElems
from models.machine import BITS, Platform
from models.vec import Action, Reserve, ShrinkTo, Step, VecState, step
from models.vec_z3 import SymPlatform, SymReserve, SymShrinkTo, SymVec, lift_state, type_invariant
from properties.base import KernelTest, Property, Scenario, StepProperty, Verdict
from properties.binder import (
    BMC_DEPTH,
    INSTANCE,
    Finding,
    SequenceProperty,
    bmc_from_new,
    explored_instance,
    replay,
)
from verify.check.cache import ProofCache, make_key
from verify.search.explorer import Instance
from verify.search.solver import (
    Answer,
    Solving,
    answering,
    any_of,
    conjuncts,
    fresh_context,
    least_model,
    solve,
    solver_version,
)
from verify.source import steps as source
from verify.traces.replay import replay as replay_trace
from verify.traces.trace import Trace, TraceError, load_text


class ReplayError(Exception):
    """The solver's counterexample does not reproduce on the Python model: a bug in the checker."""


@dataclass(frozen=True)
class Result:
    prop: Property | SequenceProperty
    model: ModelSpec
    verdict: Verdict
    seconds: float
    counterexample: Trace | None = None
    detail: str = ""
    scope: str = ""  # what a sequence check covered, when it says more than the property's method
    cached: bool = False  # taken from the proof cache (a cached trace is replayed again)
    undecided: bool = False  # some query behind the verdict timed out (a bounded proof not extended)

    @property
    def method(self) -> str:
        return self.scope or self.prop.method

    @property
    def expected(self) -> Verdict:
        return Verdict.VIOLATED if self.prop.expect_violated(self.model) else Verdict.PROVED

    @property
    def as_expected(self) -> bool:
        return self.verdict is self.expected


def symbolic_platform(model: ModelSpec, page_size: int) -> tuple[SymPlatform, list[Any]]:
    """The element size as a term: a constant, or 2^log2 with log2 constrained to the model's range."""
    plat = model.machine(model.size_min, page_size)
    if not model.symbolic_size:
        return SymPlatform(plat), []
    log2 = z3.BitVec("elem_size_log2", BITS)
    low, high = model.size_min.bit_length() - 1, model.size_max.bit_length() - 1
    return SymPlatform(plat, log2), [z3.UGE(log2, low), z3.ULE(log2, high)]


def canonical_pre(prefix: str, tracks_huge: bool = False) -> SymVec:
    """A fresh pre-state with canonical identities: elements 0, 1, 2, ..., buffer 1, next allocation 2.

    Identities are only ever compared for equality, so fixing them loses no
    generality, and a replay can rebuild them.
    """
    fresh = SymVec.fresh(prefix, tracks_huge)
    buf = dataclasses.replace(fresh.buf, id=vec_z3.u64(1))
    return SymVec(fresh.len, fresh.layout_len, buf, IndexElems(), vec_z3.u64(2))


def check(
    prop: Property | SequenceProperty,
    model: ModelSpec,
    page_size: int,
    solving: Solving,
    bmc_depth: int = BMC_DEPTH,
    proof_cache: ProofCache | None = None,
    minimise: bool = True,
    explorer: Instance = INSTANCE,
) -> Result:
    """One verdict; with a cache, a stored verdict for the same source, solver and parameters is reused.

    The query a check sends is a function of the source and the parameters, so
    the key (verify.check.cache) determines it exactly. `minimise` False reports the
    solver's first counterexample (still replayed) instead of the smallest:
    mutation testing needs a kill, not a readable trace, and minimising is most
    of a violation's cost.
    """
    # A source model's verdict depends on a file the key does not cover: never cached.
    if model.source is not None:
        return _on_source(_check(prop, model, page_size, solving, bmc_depth, minimise, explorer), model)
    if proof_cache is None or not minimise:
        return _check(prop, model, page_size, solving, bmc_depth, minimise, explorer)
    key = _cache_key(prop, model, page_size, solving, bmc_depth, explorer)
    hit = _cached(prop, model, proof_cache, key)
    if hit is not None:
        return hit
    result = _check(prop, model, page_size, solving, bmc_depth, explorer=explorer)
    if decided(result):
        trace = None if result.counterexample is None else result.counterexample.text()
        proof_cache.put(
            key,
            {"verdict": result.verdict.value, "seconds": result.seconds, "detail": result.detail,
             "scope": result.scope, "trace": trace},
        )
    return result


def decided(result: Result) -> bool:
    """Whether every query behind the verdict was decided: only such a verdict is cached.

    An UNKNOWN, or a bounded proof whose induction step timed out, may be
    decided another time, so neither is stored.
    """
    return result.verdict is not Verdict.UNKNOWN and not result.undecided


def cached(
    prop: Property | SequenceProperty,
    model: ModelSpec,
    page_size: int,
    solving: Solving,
    bmc_depth: int,
    proof_cache: ProofCache,
    explorer: Instance = INSTANCE,
) -> Result | None:
    """The verdict `check` would take from the proof cache (its trace replayed), or None when it would solve.

    A run answers these in its own process, so a run answered wholly from the
    cache starts no worker processes.
    """
    if model.source is not None:
        return None
    return _cached(prop, model, proof_cache, _cache_key(prop, model, page_size, solving, bmc_depth, explorer))


def _cache_key(
    prop: Property | SequenceProperty, model: ModelSpec, page_size: int, solving: Solving, bmc_depth: int,
    explorer: Instance,
) -> str:
    faults = ",".join(sorted(model.faults))
    solvers = solver_version(solving.second_solver)
    return make_key(
        solvers, prop.id, model.name, faults, str(page_size), str(solving.timeout_ms), str(bmc_depth),
        explorer.describe(),
    )


def _cached(prop: Property | SequenceProperty, model: ModelSpec, proof_cache: ProofCache, key: str) -> Result | None:
    entry = proof_cache.get(key)
    return None if entry is None else _from_entry(prop, model, entry)


def _from_entry(prop: Property | SequenceProperty, model: ModelSpec, entry: dict[str, Any]) -> Result | None:
    """The cached result, its trace loaded and replayed like any trace file; None when the entry does not hold up."""
    start = time.perf_counter()
    try:
        verdict = Verdict(entry["verdict"])
        detail, scope, text = entry["detail"], entry["scope"], entry["trace"]
    except (KeyError, ValueError, TypeError):
        return None
    if verdict is Verdict.UNKNOWN or not isinstance(detail, str) or not isinstance(scope, str):
        return None  # UNKNOWN is never stored: an entry that says it is not the cache's own
    if (text is not None) != (verdict is Verdict.VIOLATED) or not isinstance(text, (str, type(None))):
        return None  # a violation has a trace, a proof has none
    trace = None
    if text is not None:
        try:
            replayed = replay_trace(load_text(text, "cached trace"))
        except TraceError:
            return None
        # The trace must be this check's own: its property, its model, and a violation of it.
        if not replayed.reproduces or (replayed.trace.property_id, replayed.trace.model) != (prop.id, model.name):
            return None
        trace = replayed.trace
    return Result(prop, model, verdict, time.perf_counter() - start, trace, detail, scope, True)


def _on_source(result: Result, model: ModelSpec) -> Result:
    """A source model's counterexample names the file it was found on, and its content's SHA-256."""
    if result.counterexample is None or model.source is None or model.source_sha256 is None:
        return result
    kernel_source = (model.source, model.source_sha256)
    return dataclasses.replace(result, counterexample=dataclasses.replace(result.counterexample,
                                                                          kernel_source=kernel_source))


def _check(
    prop: Property | SequenceProperty,
    model: ModelSpec,
    page_size: int,
    solving: Solving,
    bmc_depth: int,
    minimise: bool = True,
    explorer: Instance = INSTANCE,
) -> Result:
    fresh_context()
    with answering() as solvers:
        if isinstance(prop, StepProperty):
            result = _check_step(prop, model, page_size, solving, minimise)
        elif isinstance(prop, SequenceProperty):
            with explored_instance(explorer):
                result = _check_sequence(prop, model, page_size, solving, bmc_depth)
        elif isinstance(prop, KernelTest):
            result = _check_program(prop, model, page_size, solving, minimise)
        else:
            result = _check_scenario(prop, model, page_size, solving, minimise)
    method = decided_by(result.method, solvers)
    return result if method == result.method else dataclasses.replace(result, scope=method)


def decided_by(method: str, solvers: list[str]) -> str:
    """The method as it ran: a declared "z3" replaced by the solvers that answered the check's queries.

    The portfolio (verify.search.portfolio) sends most queries to Bitwuzla
    first, so the solver a method declares is not always the one that decided:
    "bitwuzla: all 64-bit values" for a proof Bitwuzla found, "bitwuzla + z3"
    where Z3 then built the counterexample's model.
    """
    if solvers and (method.startswith("z3:") or method.startswith("z3 ")):
        return " + ".join(solvers) + method[len("z3"):]
    return method


def _check_sequence(
    prop: SequenceProperty, model: ModelSpec, page_size: int, solving: Solving, bmc_depth: int
) -> Result:
    start = time.perf_counter()
    assert model.policy is not None
    if model.source is not None:
        # the source's operations, its policy included
        policy = source.binder_policy(model.source, model.source_sha256)
    else:
        policy = with_faults(model.binder_policy(), model.faults)
    plat = model.machine(model.size_min, page_size)  # the model's platform preset, else the page size's default
    found = prop.check(policy, plat, solving, bmc_depth)
    if found.verdict is Verdict.PROVED and prop.premise is not None:
        # The premise is looked for by the property's own method, on the same instance or depth.
        happens = prop.premise(policy, plat, solving, bmc_depth)
        if happens is not Answer.SAT:
            verdict = Verdict.VACUOUS if happens is Answer.UNSAT else Verdict.UNKNOWN
            word = "never happens" if happens is Answer.UNSAT else "not decided"
            detail = f"premise {word}: {prop.premise_text}"
            return Result(prop, model, verdict, time.perf_counter() - start, detail=detail, scope=found.scope)
    seconds = time.perf_counter() - start
    if found.verdict is not Verdict.VIOLATED:
        return Result(
            prop, model, found.verdict, seconds, detail=found.detail, scope=found.scope, undecided=found.undecided
        )
    if not found.actions:
        raise ReplayError(f"{prop.id} on {model.name}: a violation without a replayable trace ({found.detail})")
    if found.start is not None:
        return _violated_from_arbitrary(prop, model, policy, found, solving, bmc_depth, start)
    plat = model.machine(model.size_min, found.page_size)
    steps = replay(plat, policy, found.actions)
    if not prop.violated(plat, steps, found.mark or 0):
        raise ReplayError(f"{prop.id} on {model.name}: the trace does not violate the property in Python")
    cex = Trace(
        prop.id, model.name, plat.elem_size, plat.page_size, VecState(), tuple(steps),
        tuple(sorted(model.faults)), policy.name, cycle_from=found.mark, start="new", policy_rule=model.policy_rule,
    )
    return Result(prop, model, Verdict.VIOLATED, seconds, cex, found.detail, found.scope)


def _violated_from_arbitrary(
    prop: SequenceProperty, model: ModelSpec, policy: Policy, found: Finding, solving: Solving, bmc_depth: int,
    start: float,
) -> Result:
    """A violation the solver found from an arbitrary pre-state, then looked for from `KVVec::new()`.

    The pre-state must satisfy the type invariants and the operations must
    violate the property on the Python model from it. BMC from new() within
    `bmc_depth` operations then says whether a list binder really builds can
    get there; its trace, when it finds one, is the one reported.
    """
    assert found.start is not None
    plat = model.machine(model.size_min, found.page_size)
    broken = found.start.invariant_violations(plat)
    if broken:
        raise ReplayError(f"{prop.id} on {model.name}: the counterexample's pre-state breaks {broken}")
    steps = replay(plat, policy, found.actions, found.start)
    if not prop.violated(plat, steps, 0):
        raise ReplayError(f"{prop.id} on {model.name}: the trace does not violate the property in Python")
    faults = tuple(sorted(model.faults))
    cex = Trace(
        prop.id, model.name, plat.elem_size, plat.page_size, found.start, tuple(steps), faults, policy.name,
        start="arbitrary", policy_rule=model.policy_rule,
    )
    detail = "violated from an arbitrary state satisfying the type invariants"
    if prop.from_new is None:
        return Result(prop, model, Verdict.VIOLATED, time.perf_counter() - start, cex, detail, found.scope)
    reach = bmc_from_new(policy, plat, solving, bmc_depth, prop.from_new)
    if reach.verdict is Verdict.VIOLATED:
        from_new = replay(plat, policy, reach.actions)
        if not prop.violated(plat, from_new, 0):
            raise ReplayError(f"{prop.id} on {model.name}: the trace from KVVec::new() does not violate it in Python")
        cex = Trace(
            prop.id, model.name, plat.elem_size, plat.page_size, VecState(), tuple(from_new), faults, policy.name,
            policy_rule=model.policy_rule,
        )
        detail += f"; also reachable from KVVec::new() in {len(from_new)} operations"
    elif reach.verdict is Verdict.PROVED:
        detail += f"; not reachable from KVVec::new() within {bmc_depth} operations"
    else:
        detail += f"; whether KVVec::new() reaches it within {bmc_depth} operations is not decided ({reach.detail})"
    return Result(prop, model, Verdict.VIOLATED, time.perf_counter() - start, cex, detail, found.scope)


def _check_step(prop: StepProperty, model: ModelSpec, page_size: int, solving: Solving, minimise: bool) -> Result:
    start = time.perf_counter()
    sp, size_constraints = symbolic_platform(model, page_size)
    pre = canonical_pre("pre", model.code.tracks_huge)
    action = _sym_call(prop.operation)
    st = _vec_steps(model).sym(sp, pre, action)
    setting = [*size_constraints, type_invariant(sp, pre), *st.constraints]
    claim = prop.z3(sp, st, action)
    query = [*setting, z3.Not(claim)]
    if prop.by_conjunct:
        solved = any_of(setting, [z3.Not(part) for part in conjuncts(claim)], solving)
        if solved.answer is Answer.SAT and not minimise:
            solved = solve(query, solving)  # the first counterexample of the whole claim, as below
    else:
        solved = solve(query, solving, model_needed=not minimise)
    if solved.answer is Answer.UNSAT:
        premise = None if prop.premise is None else prop.premise(sp, st, action)
        return _witnessed(prop, model, setting, premise, solving, start)
    if solved.answer is Answer.UNKNOWN:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=solved.reason)
    # Smallest buffer first, then the other inputs; kmalloc before vmalloc, and
    # allocations that succeed unless failure is what the counterexample needs.
    amount = action.min_capacity if isinstance(action, SymShrinkTo) else action.additional
    objectives = [pre.layout_len, pre.len, amount]
    objectives += [] if sp.log2 is None else [sp.log2]
    objectives += [pre.buf.physical, pre.buf.vmalloc]
    # Small pages before a huge mapping where the platform has both: the trace records which, and an
    # objective fixes it, so that the least values determine every field of the trace.
    objectives += [pre.buf.huge] if z3.is_expr(pre.buf.huge) else []
    objectives += [z3.Not(action.outcome.kmalloc_ok), z3.Not(action.outcome.vmalloc_ok)]
    found = least_model(query, objectives, solving, solved) if minimise else solved
    if found.model is None:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=found.reason)
    m = found.model
    plat = model.machine(_value(m, sp.elem_size), page_size)
    pre_py = _state_from_model(m, pre)
    action_py = prop.operation(_value(m, amount), _outcome_from_model(m, action.outcome))
    replayed = _replay(prop, model, plat, pre_py, action_py)
    cex = Trace(
        prop.id, model.name, plat.elem_size, page_size, pre_py, (replayed,), tuple(sorted(model.faults)),
        start="arbitrary",
    )
    return Result(prop, model, Verdict.VIOLATED, time.perf_counter() - start, cex)


def _vec_steps(model: ModelSpec) -> source.VecSteps:
    """The model's Vec steps: its own encodings with its faults, or a source model's kernel functions."""
    if model.source is None:
        return source.model_steps(model.faults)
    return source.vec_steps(model.source, model.source_sha256)


def _sym_call(operation: type[ShrinkTo | Reserve]) -> SymShrinkTo | SymReserve:
    """The call a single-call property is about, with a symbolic argument and allocator outcome."""
    if operation is Reserve:
        return SymReserve(z3.BitVec("additional", BITS), SymOutcome.fresh("outcome"))
    return SymShrinkTo(z3.BitVec("min_capacity", BITS), SymOutcome.fresh("outcome"))


def _witnessed(
    prop: Property, model: ModelSpec, setting: list[Any], premise: Any, solving: Solving, start: float
) -> Result:
    """PROVED only if the property's premise is reachable (a witness exists); VACUOUS if it never happens.

    `setting` is the proof's query without the negated property: the type
    invariants (or the concrete setup) and the transition, so the witness is a
    real pre-state and step. `premise` None: the property is about every step.
    """
    if premise is None:
        return Result(prop, model, Verdict.PROVED, time.perf_counter() - start)
    witness = solve([*setting, premise], solving, model_needed=False)
    seconds = time.perf_counter() - start
    if witness.answer is Answer.UNSAT:
        return Result(prop, model, Verdict.VACUOUS, seconds, detail=f"premise never happens: {prop.premise_text}")
    if witness.answer is Answer.UNKNOWN:
        return Result(prop, model, Verdict.UNKNOWN, seconds, detail=f"premise not decided: {witness.reason}")
    return Result(prop, model, Verdict.PROVED, seconds)


def _replay(
    prop: StepProperty, model: ModelSpec, plat: Platform, pre: VecState, action: ShrinkTo | Reserve
) -> Step:
    broken = pre.invariant_violations(plat)
    if broken:
        raise ReplayError(f"{prop.id} on {model.name}: the counterexample's pre-state breaks {broken}")
    replayed = _vec_steps(model).py(plat, pre, action)
    if prop.py(plat, replayed):
        raise ReplayError(f"{prop.id} on {model.name}: the counterexample does not violate the property in Python")
    return replayed


def _check_scenario(prop: Scenario, model: ModelSpec, page_size: int, solving: Solving, minimise: bool) -> Result:
    start = time.perf_counter()
    plat = model.machine(model.size_min, page_size)
    steps = _vec_steps(model)
    state = VecState()
    for action in prop.setup:
        taken = steps.py(plat, state, action)
        if not taken.ok:
            raise ReplayError(f"{prop.id}: setup action {action} failed on the Python model")
        state = taken.post
    sp = SymPlatform(plat)
    pre = lift_state(state)
    outcome = SymOutcome.fresh("outcome")
    st = steps.sym(sp, pre, SymShrinkTo(vec_z3.u64(prop.min_capacity), outcome))
    solved = solve([*st.constraints, z3.Not(prop.z3(sp, st))], solving, model_needed=not minimise)
    if solved.answer is Answer.UNSAT:
        premise = None if prop.premise is None else prop.premise(sp, st)
        return _witnessed(prop, model, list(st.constraints), premise, solving, start)
    if solved.answer is Answer.UNKNOWN:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=solved.reason)
    query = [*st.constraints, z3.Not(prop.z3(sp, st))]
    objectives = [z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok)]
    found = least_model(query, objectives, solving, solved) if minimise else solved
    if found.model is None:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=found.reason)
    m = found.model
    action = ShrinkTo(prop.min_capacity, _outcome_from_model(m, outcome))
    replayed = steps.py(plat, state, action)
    if prop.py(plat, replayed):
        raise ReplayError(f"{prop.id} on {model.name}: the counterexample does not violate the claim in Python")
    cex = Trace(
        prop.id, model.name, plat.elem_size, page_size, state, (replayed,), tuple(sorted(model.faults)),
        setup=prop.setup, start="setup",
    )
    return Result(prop, model, Verdict.VIOLATED, time.perf_counter() - start, cex)


def _check_program(prop: KernelTest, model: ModelSpec, page_size: int, solving: Solving, minimise: bool) -> Result:
    """A kernel test with every allocator outcome of every call free; a violation is replayed call by call.

    The trace is the calls up to the first one whose claim fails on the Python
    model: the calls before it (with the solver's outcomes) as its setup.
    """
    start = time.perf_counter()
    plat = model.machine(model.size_min, page_size)
    sp = SymPlatform(plat)
    steps, outcomes = prop.encode(sp, model.faults)
    setting = [c for st in steps for c in st.constraints]
    query = [*setting, z3.Not(prop.claim(sp, steps, outcomes))]
    solved = solve(query, solving, model_needed=not minimise)
    if solved.answer is Answer.UNSAT:
        premise = None if prop.premise is None else prop.premise(sp, steps)
        return _witnessed(prop, model, setting, premise, solving, start)
    if solved.answer is Answer.UNKNOWN:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=solved.reason)
    # Allocations succeed unless failure is what the counterexample needs.
    objectives = [z3.Not(ok) for o in outcomes for ok in (o.kmalloc_ok, o.vmalloc_ok)]
    found = least_model(query, objectives, solving, solved) if minimise else solved
    if found.model is None:
        return Result(prop, model, Verdict.UNKNOWN, time.perf_counter() - start, detail=found.reason)
    m = found.model
    state, setup = VecState(), list[Action]()
    for call, outcome in zip(prop.calls, outcomes, strict=True):
        action = dataclasses.replace(call, outcome=_outcome_from_model(m, outcome))
        taken = step(plat, state, action, model.faults)
        if not prop.py(plat, taken):
            cex = Trace(
                prop.id, model.name, plat.elem_size, page_size, state, (taken,), tuple(sorted(model.faults)),
                setup=tuple(setup), start="setup",
            )
            return Result(prop, model, Verdict.VIOLATED, time.perf_counter() - start, cex)
        if not taken.ok:
            break  # the test panics at this call's unwrap: nothing after it runs
        setup.append(action)
        state = taken.post
    raise ReplayError(f"{prop.id} on {model.name}: the counterexample does not violate the claim in Python")


# --- reading a solver model back into reference-model values --------------------


def _value(m: Any, term: Any) -> int:
    return int(m.eval(term, model_completion=True).as_long())


def _truth(m: Any, term: Any) -> bool:
    if isinstance(term, bool):  # a field a model does not track (SymAlloc.huge)
        return term
    return bool(z3.is_true(m.eval(term, model_completion=True)))


def _outcome_from_model(m: Any, o: SymOutcome) -> Outcome:
    return Outcome(_truth(m, o.kmalloc_ok), _truth(m, o.vmalloc_ok))


def _state_from_model(m: Any, v: SymVec) -> VecState:
    buf = None
    if _truth(m, v.buf.live):
        kind = Kind.VMALLOC if _truth(m, v.buf.vmalloc) else Kind.KMALLOC
        buf = Allocation(
            _value(m, v.buf.id), kind, _value(m, v.buf.requested), _value(m, v.buf.physical), _truth(m, v.buf.huge)
        )
    length = _value(m, v.len)
    return VecState(length, _value(m, v.layout_len), buf, Elements.identities(length), _value(m, v.next_id))
