"""Runs many (property, model) checks, in parallel processes, yielding results in a fixed order.

Scenario claims are closures, which do not pickle, so a worker receives names
and rebuilds the property itself; the parent re-attaches the objects. An
unexpected exception in one check is that check's UNKNOWN result ("internal
error"), which fails the gate; the other checks still run and report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from models.catalogue import ModelSpec
from properties.base import Property, Verdict
from properties.binder import BMC_DEPTH, INSTANCE, SequenceProperty
from properties.registry import all_properties
from verify import workers
from verify.check.cache import ProofCache
from verify.check.engine import Result, cached, check
from verify.interrupts import stop_if_signalled
from verify.search.explorer import Instance
from verify.search.solver import Solving


def default_jobs() -> int:
    return len(os.sched_getaffinity(0))


def internal_error(prop: Property | SequenceProperty, model: ModelSpec, error: BaseException, seconds: float) -> Result:
    """A check that crashed, as its UNKNOWN result: one line saying what went wrong."""
    text = " ".join(str(error).split()) or type(error).__name__
    detail = f"internal error: {type(error).__name__}: {text}"
    return Result(prop, model, Verdict.UNKNOWN, seconds, detail=detail)


@dataclass(frozen=True)
class RunOptions:
    """The settings of one run, built by the command line and handed, as a value, to every worker."""

    page_size: int
    timeout_ms: int
    jobs: int = 1
    bmc_depth: int = BMC_DEPTH
    explorer: Instance = INSTANCE  # what the explicit-state properties explore
    cache_dir: Path | None = None  # None: no proof cache
    dump_smt: Path | None = None  # every query written there as SMT-LIB2
    second_solver: str | None = None  # every UNSAT re-checked by it; None: Z3 alone

    @property
    def solving(self) -> Solving:
        return Solving(self.timeout_ms, self.dump_smt, self.second_solver)


def _proof_cache(options: RunOptions) -> ProofCache | None:
    return None if options.cache_dir is None else ProofCache(options.cache_dir)


def _guarded_check(
    prop: Property | SequenceProperty, model: ModelSpec, options: RunOptions, proof_cache: ProofCache | None
) -> Result:
    start = time.perf_counter()
    try:
        result = check(
            prop, model, options.page_size, options.solving, options.bmc_depth, proof_cache, explorer=options.explorer
        )
    except Exception as e:  # noqa: BLE001 - any bug in one check must not stop the others
        result = internal_error(prop, model, e, time.perf_counter() - start)
    stop_if_signalled()  # a signal whose exception was lost in the check: its result is not the check's
    return result


@cache
def _properties(page_size: int) -> dict[str, Property | SequenceProperty]:
    """The properties by id, built once per worker: building them costs more than a quick check."""
    return {p.id: p for p in all_properties(page_size)}


def _check_named(named: list[tuple[str, ModelSpec]], options: RunOptions) -> list[Result]:
    """Check (property id, model) pairs in turn, in one worker."""
    proof_cache = _proof_cache(options)
    results = []
    for prop_id, model in named:
        result = _guarded_check(_properties(options.page_size)[prop_id], model, options, proof_cache)
        results.append(replace(result, prop=None))  # type: ignore[arg-type]
    return results


def _batches(
    pairs: Sequence[tuple[Property | SequenceProperty, ModelSpec]], indices: list[int]
) -> list[list[int]]:
    """The checks a worker takes at once: one alone, or a model's explicit-state checks together.

    The explicit-state checks of one model explore the same instance (properties.binder keeps the
    exploration in the process), so in one worker it is explored once, not once in each worker.
    """
    batches: list[list[int]] = []
    explored: dict[str, list[int]] = {}
    for i in indices:
        prop, model = pairs[i]
        if prop.method != "explicit-state":
            batches.append([i])
        elif model.name in explored:
            explored[model.name].append(i)
        else:
            explored[model.name] = [i]
            batches.append(explored[model.name])
    return batches


def _cached_here(
    pairs: Sequence[tuple[Property | SequenceProperty, ModelSpec]], options: RunOptions, proof_cache: ProofCache | None
) -> dict[int, Result]:
    """The pairs the proof cache answers, answered in this process: a worker costs its start-up and imports."""
    if proof_cache is None:
        return {}
    found = {}
    for i, (prop, model) in enumerate(pairs):
        try:
            hit = cached(
                prop, model, options.page_size, options.solving, options.bmc_depth, proof_cache, options.explorer
            )
        except Exception:  # noqa: BLE001 - a miss: the check itself then runs, and reports what is wrong
            hit = None
        if hit is not None:
            found[i] = hit
    return found


def run_checks(pairs: Sequence[tuple[Property | SequenceProperty, ModelSpec]], options: RunOptions) -> Iterator[Result]:
    """Check every pair, those the proof cache does not answer in `options.jobs` worker processes."""
    proof_cache = _proof_cache(options)
    answered = _cached_here(pairs, options, proof_cache)
    unanswered = [i for i in range(len(pairs)) if i not in answered]
    if workers.bounded(options.jobs, len(unanswered)) <= 1:
        for i, (prop, model) in enumerate(pairs):
            yield answered[i] if i in answered else _guarded_check(prop, model, options, proof_cache)
        return
    # Declared violations are the slow checks (their counterexamples are
    # minimised and replayed): submitting them first keeps every core busy to the end.
    batches = _batches(pairs, unanswered)
    order = sorted(batches, key=lambda b: not any(pairs[i][0].expect_violated(pairs[i][1]) for i in b))
    with workers.pool(options.jobs, len(batches)) as pool:
        futures: dict[int, tuple[Future[list[Result]], int]] = {}
        for batch in order:
            future = pool.submit(_check_named, [(pairs[i][0].id, pairs[i][1]) for i in batch], options)
            futures.update((i, (future, n)) for n, i in enumerate(batch))
        for i, (prop, model) in enumerate(pairs):
            if i in answered:
                yield answered[i]
                continue
            future, n = futures[i]
            try:
                result = future.result()[n]
            except Exception as e:  # noqa: BLE001 - a worker that died (or a result that did not pickle)
                result = internal_error(prop, model, e, 0.0)
            yield replace(result, prop=prop)
