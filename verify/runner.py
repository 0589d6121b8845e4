"""Runs many (property, model) checks, in parallel processes, yielding results in a fixed order.

Scenario claims are closures, which do not pickle, so a worker receives names
and rebuilds the property itself; the parent re-attaches the objects.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace

from models.catalogue import ModelSpec
from properties.base import Property
from properties.binder import BMC_DEPTH, SequenceProperty
from properties.registry import all_properties
from verify.engine import Result, check


def default_jobs() -> int:
    return len(os.sched_getaffinity(0))


def _check_named(prop_id: str, model: ModelSpec, page_size: int, timeout_ms: int, bmc_depth: int) -> Result:
    prop = next(p for p in all_properties(page_size) if p.id == prop_id)
    result = check(prop, model, page_size, timeout_ms, bmc_depth)
    return replace(result, prop=None)  # type: ignore[arg-type]


def run_checks(
    pairs: Sequence[tuple[Property | SequenceProperty, ModelSpec]],
    page_size: int,
    timeout_ms: int,
    jobs: int,
    bmc_depth: int = BMC_DEPTH,
) -> Iterator[Result]:
    if jobs <= 1 or len(pairs) <= 1:
        for prop, model in pairs:
            yield check(prop, model, page_size, timeout_ms, bmc_depth)
        return
    # fork keeps start-up cheap: the workers inherit the imported solver.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures: list[Future[Result]] = [
            pool.submit(_check_named, prop.id, model, page_size, timeout_ms, bmc_depth) for prop, model in pairs
        ]
        for (prop, _), future in zip(pairs, futures, strict=True):
            yield replace(future.result(), prop=prop)
