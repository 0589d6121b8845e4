"""`verify policies`: every binder property and every metric, for each policy of a family.

A policy's work is split into independent cells run by an executor (the local
process pool, or a Dask cluster: verify.check.executors): one cell explores the
instance once and gives the metrics (verify.check.policy_metrics) and the
explicit-state verdicts; each Z3 property is a cell of its own. Every verdict
comes from the engine (verify.check.engine.check), with the proof cache as
`verify run` uses it; the metrics are cached beside the proofs under a key of the
same kind (the tool's source, the rule, the instance).

The Z3 properties (all 64-bit sizes, the platform's pages) cost seconds a
policy where exploring costs a fraction of one, so by default they run for the
policies that matter to the comparison: the Pareto front of (waste,
reallocations per 16 operations), the built-in policies and every policy a user
named; `prove="all"` runs them for every policy of the family.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from models.catalogue import ModelSpec
from properties.base import Verdict
from properties.binder import (
    PROPERTIES,
    SequenceProperty,
    exploration,
    explored_instance,
)
from verify.check.all_sizes import RegrowForAllSizes, WasteForAllSizes, regrow_cell, waste_cell
from verify.check.cache import ProofCache, make_key
from verify.check.engine import check
from verify.check.runner import RunOptions, internal_error
from verify.search.solver import solver_version
from verify.source import steps as source

if TYPE_CHECKING:
    from verify.check.policy_metrics import Metrics

EXPLICIT = tuple(p for p in PROPERTIES if p.method == "explicit-state")
SYMBOLIC = tuple(p for p in PROPERTIES if p.method != "explicit-state")
PROPERTY_IDS = tuple(p.id for p in PROPERTIES)
METRICS_FORMAT = "policy-metrics/1"


@dataclass(frozen=True)
class Cell:
    """One property's verdict on one policy, as the engine gave it."""

    prop_id: str
    verdict: str  # a Verdict's value
    scope: str
    detail: str
    seconds: float
    cached: bool

    @property
    def proved(self) -> bool:
        return self.verdict == Verdict.PROVED.value


@dataclass(frozen=True)
class PolicyRow:
    name: str
    rule: str  # for a policy read from source: the file it was read from
    origin: str  # "built-in", "family", "configured", "--policy", "source"
    metrics: Metrics
    cells: dict[str, Cell] = field(default_factory=dict)  # by property id; absent: not run or not applicable
    applicable: tuple[str, ...] = ()  # the property ids that apply to it
    all_sizes: WasteForAllSizes | None = None  # the waste factor, computed with --all-sizes
    regrow_all_sizes: RegrowForAllSizes | None = None  # the regrow window, computed with --all-sizes

    @property
    def reallocs16(self) -> int:
        return self.metrics.reallocs[-1]

    def flag(self, prop_id: str) -> bool | None:
        """The property PROVED (True), not (False), or not run yet (None); not applicable is False."""
        if prop_id not in self.applicable:
            return False
        cell = self.cells.get(prop_id)
        return None if cell is None else cell.proved


class Executor(Protocol):
    """Runs independent calls, each `fn(*args)`, and returns their results in order; `done` is called as each
    call finishes (from another thread, possibly)."""

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]],
            done: Callable[[], None] | None = None) -> list[Any]: ...


def _cell(prop: SequenceProperty, model: ModelSpec, options: RunOptions, proof_cache: ProofCache | None) -> Cell:
    start = time.perf_counter()
    try:
        r = check(prop, model, options.page_size, options.solving, options.bmc_depth, proof_cache,
                  explorer=options.explorer)
    except Exception as e:  # noqa: BLE001 - one crashed check is that cell's UNKNOWN, as in `verify run`
        r = internal_error(prop, model, e, time.perf_counter() - start)
    return Cell(prop.id, r.verdict.value, r.method, r.detail, r.seconds, r.cached)


def _cache(options: RunOptions) -> ProofCache | None:
    return None if options.cache_dir is None else ProofCache(options.cache_dir)


def explore_cell(model: ModelSpec, options: RunOptions) -> tuple[Metrics, list[Cell]]:
    """The metrics and the explicit-state verdicts of one policy: the instance explored once, in one process."""
    # Imported here: the metrics need numpy, and `verify run` imports this module (for the policies
    # command's flags) without measuring anything.
    from verify.check.policy_metrics import Metrics, measure

    proof_cache = _cache(options)
    cells = [_cell(p, model, options, proof_cache) for p in EXPLICIT if p.applies(model)]
    key = None
    if proof_cache is not None and model.source is None:  # a source's policy depends on a file the key misses
        rule = model.binder_policy().rule
        key = make_key(METRICS_FORMAT, solver_version(None), rule, options.explorer.describe())
        entry = proof_cache.get(key)
        if entry is not None:
            try:
                return Metrics.from_json(entry), cells
            except (KeyError, TypeError, ValueError):
                pass  # not the shape this code writes: measured again
    policy = source.binder_policy(model.source) if model.source is not None else model.binder_policy()
    with explored_instance(options.explorer):
        metrics = measure(exploration(policy))
    if key is not None and proof_cache is not None:
        proof_cache.put(key, metrics.to_json())
    return metrics, cells


def prove_cell(prop_id: str, model: ModelSpec, options: RunOptions) -> Cell:
    prop = next(p for p in SYMBOLIC if p.id == prop_id)
    return _cell(prop, model, options, _cache(options))


def for_all_sizes(rows: list[PolicyRow], names: Iterable[str], candidates: Sequence[Candidate],
                  options: RunOptions, executor: Executor) -> list[PolicyRow]:
    """`rows` with the waste factor and the regrow window for all sizes (verify.check.all_sizes) on the policies
    named (not on a policy read from source)."""
    models = {c.name: c.model for c in candidates}
    wanted = [r for r in rows if r.name in set(names) and models[r.name].source is None]
    calls: list[tuple[Any, ...]] = [(waste_cell, models[r.name], r.metrics.waste, options) for r in wanted]
    calls += [(regrow_cell, models[r.name], r.metrics.regrow_window, options) for r in wanted]
    done = executor.map(all_sizes_cell, calls)
    waste = {r.name: w for r, w in zip(wanted, done[:len(wanted)], strict=True)}
    regrow = {r.name: g for r, g in zip(wanted, done[len(wanted):], strict=True)}
    return [replace(r, all_sizes=waste.get(r.name, r.all_sizes),
                    regrow_all_sizes=regrow.get(r.name, r.regrow_all_sizes)) for r in rows]


def all_sizes_cell(fn: Callable[..., Any], *args: Any) -> Any:
    """One of verify.check.all_sizes's cells (a module-level function, so that it pickles)."""
    return fn(*args)


@dataclass(frozen=True)
class Candidate:
    """A policy to sweep: its row's name, its model, where it came from, and what its rule column shows."""

    name: str
    model: ModelSpec
    origin: str
    shown_rule: str


def explore_all(candidates: Sequence[Candidate], options: RunOptions, executor: Executor) -> list[PolicyRow]:
    explored = executor.map(explore_cell, [(c.model, options) for c in candidates])
    rows = []
    for c, (metrics, cells) in zip(candidates, explored, strict=True):
        applicable = tuple(p.id for p in PROPERTIES if p.applies(c.model))
        rows.append(PolicyRow(c.name, c.shown_rule, c.origin, metrics, {x.prop_id: x for x in cells},
                              applicable))
    return rows


def prove(rows: list[PolicyRow], names: Iterable[str], candidates: Sequence[Candidate], options: RunOptions,
          executor: Executor) -> list[PolicyRow]:
    """`rows` with every Z3 property run on the policies named (those already run are not run again)."""
    models = {c.name: c.model for c in candidates}
    wanted = set(names)
    owners = [(r.name, p.id) for r in rows if r.name in wanted
              for p in SYMBOLIC if p.id in r.applicable and p.id not in r.cells]
    done = executor.map(prove_cell, [(prop_id, models[name], options) for name, prop_id in owners])
    found: dict[str, dict[str, Cell]] = {}
    for (name, prop_id), c in zip(owners, done, strict=True):
        found.setdefault(name, {})[prop_id] = c
    return [replace(r, cells={**r.cells, **found.get(r.name, {})}) for r in rows]


def dominates(a: PolicyRow, b: PolicyRow) -> bool:
    """a is at least as good as b in waste and in reallocations per 16 operations, and better in one."""
    at_least = a.metrics.waste <= b.metrics.waste and a.reallocs16 <= b.reallocs16
    return at_least and (a.metrics.waste, a.reallocs16) != (b.metrics.waste, b.reallocs16)


def front(rows: Sequence[PolicyRow]) -> list[PolicyRow]:
    """The Pareto front: the policies no other policy dominates."""
    return [r for r in rows if not any(dominates(o, r) for o in rows)]


PROVE = ("front", "all", "none")


def sweep(candidates: Sequence[Candidate], options: RunOptions, executor: Executor, which: str) -> list[PolicyRow]:
    """Every candidate explored; the Z3 properties on `which` (PROVE): the front and the policies not of the
    family, every policy, or none."""
    rows = explore_all(candidates, options, executor)
    if which == "none":
        return rows
    names = [r.name for r in rows] if which == "all" else [
        *(r.name for r in front(rows)), *(r.name for r in rows if r.origin != "family")]
    return prove(rows, dict.fromkeys(names), candidates, options, executor)
