"""The numbers that compare binder shrink policies, read off the explored graph (verify.search.packed_graph).

Each is exact on the explored instance (every reachable state up to the
capacity bound, every allocator outcome), and says nothing beyond it:

- waste: the least integer c with capacity < c * (len + 1) after every
  deregistration whose shrink neither failed nor was refused by the vmalloc page
  rule (binder.waste-bound is "waste <= 4");
- reallocs: for k = 1..16, the most reallocating operations among any k
  consecutive ones (binder.no-thrash's table);
- regrow window: after a deregistration that shrank the list, the fewest
  registrations until one reallocates, over every such deregistration (1 is an
  immediate regrow; None: no shrink is ever followed by a reallocating
  registration within the instance);
- reclaim: the least integer r with physical bytes held < r * 8 * (len + 1)
  after every deregistration whose shrink did not fail (what binder.reclaim
  bounds: memory held per process still registered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.binder import ELEM_SIZE
from properties.binder import WORST_CASE_K
from verify.search.packed_graph import PackedGraph


@dataclass(frozen=True)
class Metrics:
    waste: int
    reallocs: tuple[int, ...]  # k = 1..WORST_CASE_K
    regrow_window: int | None
    reclaim: int
    states: int
    edges: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "reallocs": list(self.reallocs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        return cls(**{**data, "reallocs": tuple(data["reallocs"])})


def measure(ex: PackedGraph) -> Metrics:
    return Metrics(waste(ex), tuple(ex.worst_reallocations(WORST_CASE_K)), regrow_window(ex), reclaim(ex),
                   ex.states, ex.edges)


def _deregistrations(ex: PackedGraph) -> Any:
    return ~ex.is_register()


def waste(ex: PackedGraph) -> int:
    kept = _deregistrations(ex) & ~ex.shrink_failed() & ~ex.shrink_refused()
    dst = ex.dst[kept]
    return int((ex.layout[dst] // (ex.len[dst] + 1)).max(initial=0)) + 1


def reclaim(ex: PackedGraph) -> int:
    kept = _deregistrations(ex) & ~ex.shrink_failed()
    dst = ex.dst[kept]
    return int((ex.physical[dst] // (ELEM_SIZE * (ex.len[dst] + 1))).max(initial=0)) + 1


def regrow_window(ex: PackedGraph) -> int | None:
    """The fewest registrations after a shrinking deregistration until one reallocates (None: never)."""
    unbounded = np.iinfo(np.int64).max // 2
    # until[v]: from state v, the fewest registrations until one reallocates. A registration that does not
    # reallocate adds a process (len + 1), so deciding states from the longest list down decides each once.
    until = np.full(ex.states, unbounded, dtype=np.int64)
    registrations = np.nonzero(ex.is_register() & (ex.src != ex.dst))[0]  # a failed one changes nothing
    reallocates = ex.reallocates()
    lens = ex.len[ex.src[registrations]]
    for n in sorted(set(lens.tolist()), reverse=True):
        at = registrations[lens == n]
        cost = np.where(reallocates[at], 1, np.minimum(until[ex.dst[at]] + 1, unbounded))
        np.minimum.at(until, ex.src[at], cost)
    shrinking = np.nonzero(_deregistrations(ex) & ex.shrank())[0]
    best = int(until[ex.dst[shrinking]].min(initial=unbounded))
    return None if best >= unbounded else best

