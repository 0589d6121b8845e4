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
from dataclasses import replace
from pathlib import Path

from models.catalogue import ModelSpec
from properties.base import Property, Verdict
from properties.binder import BMC_DEPTH, SequenceProperty
from properties.registry import all_properties
from verify import workers
from verify.check.cache import ProofCache
from verify.check.engine import Result, check


def default_jobs() -> int:
    return len(os.sched_getaffinity(0))


def internal_error(prop: Property | SequenceProperty, model: ModelSpec, error: BaseException, seconds: float) -> Result:
    """A check that crashed, as its UNKNOWN result: one line saying what went wrong."""
    text = " ".join(str(error).split()) or type(error).__name__
    detail = f"internal error: {type(error).__name__}: {text}"
    return Result(prop, model, Verdict.UNKNOWN, seconds, detail=detail)


def _guarded_check(
    prop: Property | SequenceProperty,
    model: ModelSpec,
    page_size: int,
    timeout_ms: int,
    bmc_depth: int,
    proof_cache: ProofCache | None,
) -> Result:
    start = time.perf_counter()
    try:
        return check(prop, model, page_size, timeout_ms, bmc_depth, proof_cache)
    except Exception as e:  # noqa: BLE001 - any bug in one check must not stop the others
        return internal_error(prop, model, e, time.perf_counter() - start)


def _check_named(
    prop_id: str, model: ModelSpec, page_size: int, timeout_ms: int, bmc_depth: int, cache_dir: Path | None
) -> Result:
    prop = next(p for p in all_properties(page_size) if p.id == prop_id)
    proof_cache = None if cache_dir is None else ProofCache(cache_dir)
    result = _guarded_check(prop, model, page_size, timeout_ms, bmc_depth, proof_cache)
    return replace(result, prop=None)  # type: ignore[arg-type]


def run_checks(
    pairs: Sequence[tuple[Property | SequenceProperty, ModelSpec]],
    page_size: int,
    timeout_ms: int,
    jobs: int,
    bmc_depth: int = BMC_DEPTH,
    cache_dir: Path | None = None,
) -> Iterator[Result]:
    """Check every pair; `cache_dir` None means no proof cache."""
    if workers.bounded(jobs, len(pairs)) <= 1:
        proof_cache = None if cache_dir is None else ProofCache(cache_dir)
        for prop, model in pairs:
            yield _guarded_check(prop, model, page_size, timeout_ms, bmc_depth, proof_cache)
        return
    # Declared violations are the slow checks (their counterexamples are
    # minimised and replayed): submitting them first keeps every core busy to the end.
    order = sorted(range(len(pairs)), key=lambda i: not pairs[i][0].expect_violated(pairs[i][1]))
    with workers.pool(jobs, len(pairs)) as pool:
        futures: dict[int, Future[Result]] = {}
        for i in order:
            prop, model = pairs[i]
            futures[i] = pool.submit(_check_named, prop.id, model, page_size, timeout_ms, bmc_depth, cache_dir)
        for i, (prop, model) in enumerate(pairs):
            try:
                result = futures[i].result()
            except Exception as e:  # noqa: BLE001 - a worker that died (or a result that did not pickle)
                result = internal_error(prop, model, e, 0.0)
            yield replace(result, prop=prop)
