"""binder.reclaim is VIOLATED on every policy of the catalogue: its judge must also be able to say PROVED."""

from __future__ import annotations

import pytest

from models.allocator import Outcome
from models.binder import POLICIES, Deregister, Register, policy_named
from models.catalogue import model_named
from properties import binder
from properties.base import Verdict
from properties.binder import reclaim, reclaim_bound, replay
from verify.check.engine import check
from verify.search.explorer import Instance, explore
from verify.search.solver import Solving

PAGE = 64
PLAT = Instance(PAGE, 40).platform
RECLAIM = next(p for p in binder.PROPERTIES if p.id == "binder.reclaim")
KMALLOC_FAILS = Outcome(kmalloc_ok=False, vmalloc_ok=True)


def _fires(instance: Instance, policy_name: str) -> bool:
    ex = explore(policy_named(policy_name), instance)
    return any(reclaim(instance.platform, [s], 0) for _, _, s in ex.steps())


@pytest.mark.parametrize("policy", [p.name for p in POLICIES])
def test_reclaim_holds_while_the_list_stays_within_the_bounds_smallest_object(policy: str) -> None:
    # Up to capacity 4 every buffer is a kmalloc object of at most 32 bytes, what the bound allows at len 0.
    assert not _fires(Instance(PAGE, 4), policy)
    # At capacity 8 a 64-byte object exists, and every policy keeps it for fewer than one process.
    assert _fires(Instance(PAGE, 8), policy)


def test_the_engine_proves_reclaim_on_an_instance_where_it_holds() -> None:
    result = check(RECLAIM, model_named("binder/v6"), 4096, Solving(60_000), explorer=Instance(PAGE, 4))
    assert result.verdict is Verdict.PROVED and "capacity <= 4" in result.scope


def test_a_list_grown_in_vmalloc_memory_is_reclaimed() -> None:
    # v6: 9 registrations, the growth to capacity 16 (128 bytes, two pages) in vmalloc because kmalloc fails.
    regs = [Register(i, KMALLOC_FAILS if i == 8 else Outcome()) for i in range(9)]
    steps = replay(PLAT, policy_named("v6"), (*regs, *(Deregister(i) for i in range(9))))
    peak = steps[8].post
    assert peak.buf is not None and peak.buf.kind.value == "vmalloc" and peak.physical() == 128
    # At 3 processes v6 shrinks to 6: a fresh 64-byte kmalloc object replaces the two pages.
    shrink = next(s for s in steps[9:] if s.reallocates)
    assert (shrink.post.len, shrink.post.layout_len, shrink.post.physical()) == (3, 6, 64)
    assert shrink.post.physical() <= reclaim_bound(PLAT, 3) == 128
    for end in range(10, len(steps) + 1):
        assert not reclaim(PLAT, steps[:end], 0), f"operation {end}"


def test_the_same_list_grown_in_kmalloc_memory_is_not() -> None:
    steps = replay(PLAT, policy_named("v6"), (*(Register(i) for i in range(9)), *(Deregister(i) for i in range(9))))
    peak = steps[8].post
    assert peak.buf is not None and peak.buf.kind.value == "kmalloc" and peak.physical() == 128
    held = [s.post.physical() for s in steps[9:]]
    assert held == [128] * 8 + [0]  # krealloc keeps the object at every shrink; only shrink_to(0) frees it
    fired = [end for end in range(10, len(steps) + 1) if reclaim(PLAT, steps[:end], 0)]
    # The bound is a fresh kmalloc of 4 * (len + 1) processes: 128 bytes down to 3 processes, then 96 and 64.
    assert fired == [16, 17]
