"""Mutation testing: every property on every seeded fault, and which faults each property kills.

A property kills a mutant when it is declared PROVED on the unmutated model
and the mutant makes it VIOLATED, with a counterexample that replayed on the
mutated Python model (the engine replays every counterexample before
reporting it, a violation found from an arbitrary state from that state). A
timeout, an internal error (such as a counterexample that does not replay),
or a property already violated on the unmutated model kills nothing.
Counterexamples are not minimised here: a kill needs a replayed trace, not
the smallest one, and minimising is most of a violation's cost.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from models.catalogue import ModelSpec, model_named
from models.faults import BINDER_FAULTS, BINDER_VEC_FAULTS, FAULTS, PLATFORM_FAULT_PRESETS, PLATFORM_FAULTS
from models.machine import PAGE_SIZE_PRESETS
from properties.base import Verdict
from properties.registry import all_properties, applicable
from verify import workers
from verify.check.engine import ReplayError, check
from verify.search.solver import Solving
from verify.traces.trace import Trace

# The models a fault is seeded into: shrink_to and allocator faults into the
# KVVec models with a zero-sized and a one-byte T (the series' KUnit element),
# binder faults and faults of the Vec operations binder makes into the merged v6 policy.
KVVEC_MODELS = ("kvvec-v6/zst", "kvvec-v6/u8")
BINDER_MODELS = ("binder/v6",)
# The generic shrink_to's faults go into the generic KVVec on linux-next's vrealloc, which runs every
# path of it; a huge mapping needs a platform that has them.
GENERIC_MODELS: dict[str, tuple[str, ...]] = {
    "generic-noop-check-dropped": ("kvvec-generic-next/u8",),
    "generic-layout-kept": ("kvvec-generic-next/u8",),
    "vrealloc-frees-one-page-too-many": ("kvvec-generic-next/u8",),
    "vrealloc-shrink-ignores-huge": ("kvvec-generic-next/u8@arm64-4k",),
}


class Cell(enum.Enum):
    KILLED = "X"  # violated with a replayed counterexample
    SURVIVED = "."  # still proved
    UNKNOWN = "?"  # the solver gave up, or an internal error
    NOT_A_KILLER = "-"  # already violated without the fault, or not applicable


@dataclass(frozen=True)
class Outcome:
    fault: str
    prop_id: str
    model: str
    cell: Cell
    seconds: float
    counterexample: str = ""  # the replayed trace, one line
    trace: Trace | None = None  # the replayed trace itself


def models_for(fault: str, page_size: int = 4096) -> tuple[ModelSpec, ...]:
    if fault in GENERIC_MODELS:  # whatever the run's page size: these models name their own platform
        return tuple(model_named(n) for n in GENERIC_MODELS[fault])
    names: tuple[str, ...] = BINDER_MODELS if fault in BINDER_FAULTS or fault in BINDER_VEC_FAULTS else KVVEC_MODELS
    if fault in PLATFORM_FAULTS:  # a platform's limits show on a platform that has them
        names = tuple(f"{n}@{PLATFORM_FAULT_PRESETS[page_size]}" for n in KVVEC_MODELS)
    elif names == KVVEC_MODELS and page_size != 4096:  # named by their platform, as `verify run` names them
        names = tuple(f"{n}@{PAGE_SIZE_PRESETS[page_size]}" for n in KVVEC_MODELS)
    return tuple(model_named(n) for n in names)


def _judge(fault: str, prop_id: str, model_name: str, page_size: int, timeout_ms: int) -> Outcome:
    prop = next(p for p in all_properties(page_size) if p.id == prop_id)
    base = model_named(model_name)
    if prop.expect_violated(base):
        return Outcome(fault, prop_id, model_name, Cell.NOT_A_KILLER, 0.0)
    try:
        result = check(prop, base.with_faults(frozenset({fault})), page_size, Solving(timeout_ms), minimise=False)
    except ReplayError:  # a bug in the checker, not a kill
        return Outcome(fault, prop_id, model_name, Cell.UNKNOWN, 0.0)
    if result.verdict is Verdict.VIOLATED:
        assert result.counterexample is not None
        cex = result.counterexample
        return Outcome(fault, prop_id, model_name, Cell.KILLED, result.seconds, cex.one_line(), cex)
    cell = Cell.UNKNOWN if result.verdict is Verdict.UNKNOWN else Cell.SURVIVED
    return Outcome(fault, prop_id, model_name, cell, result.seconds)


def jobs_for(faults: Sequence[str], page_size: int) -> list[tuple[str, str, str]]:
    """(fault, property id, model name) for every applicable pair, in a fixed order."""
    props = all_properties(page_size)
    return [
        (fault, p.id, m.name)
        for fault in faults
        for m in models_for(fault, page_size)
        for p in props
        if applicable(p, m)
    ]


def run_mutants(faults: Sequence[str], page_size: int, timeout_ms: int, jobs: int) -> Iterator[Outcome]:
    """Every (fault, property, model) outcome, in the order of `jobs_for`, solved in `jobs` processes."""
    todo = jobs_for(faults, page_size)
    if jobs <= 1:
        for fault, prop_id, model in todo:
            yield _judge(fault, prop_id, model, page_size, timeout_ms)
        return
    with workers.pool(jobs, len(todo)) as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(_judge, fault, prop_id, model, page_size, timeout_ms) for fault, prop_id, model in todo
        ]
        for future in futures:
            yield future.result()


def killers(outcomes: Sequence[Outcome], fault: str) -> list[Outcome]:
    return [o for o in outcomes if o.fault == fault and o.cell is Cell.KILLED]


def matrix(outcomes: Sequence[Outcome], faults: Sequence[str]) -> str:
    """One row per mutant, one column per property (numbered, with a legend); a cell per model."""
    prop_ids = list(dict.fromkeys(o.prop_id for o in outcomes))
    column = {p: i + 1 for i, p in enumerate(prop_ids)}
    lines = ["properties:"]
    lines += [f"  {column[p]:>2} {p}" for p in prop_ids]
    lines.append("cells: X killed (replayed counterexample), . survived, ? unknown or internal error,")
    lines.append("       - already violated unmutated; one character per model the fault is seeded into")
    header = " ".join(f"{column[p]:>3}" for p in prop_ids)
    width = max([30, *map(len, faults)])
    lines.append(f"{'mutant':<{width}} {header}  killed by")
    for fault in faults:
        mine = [o for o in outcomes if o.fault == fault]
        cells = []
        for p in prop_ids:
            chars = "".join(o.cell.value for o in mine if o.prop_id == p)
            cells.append(f"{chars or ' ':>3}")
        kills = sorted({column[o.prop_id] for o in killers(mine, fault)})
        lines.append(f"{fault:<{width}} {' '.join(cells)}  {','.join(map(str, kills)) or 'SURVIVED'}")
    return "\n".join(lines)


def witnesses(outcomes: Sequence[Outcome], faults: Sequence[str]) -> str:
    """For each killed mutant, its first killer and the replayed counterexample."""
    lines = []
    for fault in faults:
        found = killers(outcomes, fault)
        if found:
            first = found[0]
            lines.append(f"{fault}: {first.prop_id} on {first.model}: {first.counterexample}")
    return "\n".join(lines)


def summary(outcomes: Sequence[Outcome], faults: Sequence[str], seconds: float) -> str:
    killed = [f for f in faults if killers(outcomes, f)]
    survived = [f for f in faults if f not in killed]
    percent = 100.0 * len(killed) / len(faults) if faults else 100.0
    text = f"{len(killed)}/{len(faults)} mutants killed ({percent:.0f}%), {len(outcomes)} checks in {seconds:.1f}s"
    if survived:
        text += f"\nsurvived: {', '.join(survived)}"
    return text


ALL_FAULTS: tuple[str, ...] = tuple(FAULTS)
