"""The four KUnit scenarios of the series (patch 2), as concrete checks with `u8` elements.

The setup runs on the Python reference model with stated allocator outcomes;
the final shrink_to is encoded in Z3 from that concrete state and the solver
ranges over every allocator outcome of the call. PAGE_SIZE follows the run.
"""

from __future__ import annotations

from typing import Any

import z3

from models.allocator import Outcome
from models.catalogue import ModelSpec
from models.machine import Platform
from models.vec import Push, Reserve, Step
from models.vec_z3 import SymPlatform, SymStep
from properties.base import Scenario
from properties.shrink import physical_z3

VMALLOC_ONLY = Outcome(kmalloc_ok=False, vmalloc_ok=True)


def _u8(model: ModelSpec) -> bool:
    return model.size_min == model.size_max == 1


def pushes(count: int) -> tuple[Push, ...]:
    """Push identities 0..count-1: the KUnit tests fill the vector element by element."""
    return tuple(Push(i) for i in range(count))


RETURNS_OK = "the final shrink_to returns Ok"


def returns_ok(sp: SymPlatform, st: SymStep) -> Any:
    return st.ok


def scenarios(page: int) -> tuple[Scenario, ...]:
    def frees_pages_z3(sp: SymPlatform, st: SymStep) -> Any:
        cap = sp.capacity(st.post)
        freed = z3.ULT(physical_z3(st.post), physical_z3(st.pre))
        return z3.Implies(st.ok, z3.And(z3.ULT(cap, 4 * page), z3.UGE(cap, st.pre.len), freed))

    def frees_pages_py(plat: Platform, s: Step) -> bool:
        cap = s.post.capacity(plat)
        return not s.ok or (s.pre.len <= cap < 4 * page and s.post.physical() < s.pre.physical())

    def empty_z3(sp: SymPlatform, st: SymStep) -> Any:
        return z3.And(st.ok, sp.capacity(st.post) == 0)

    def empty_py(plat: Platform, s: Step) -> bool:
        return s.ok and s.post.capacity(plat) == 0

    def noop_z3(sp: SymPlatform, st: SymStep) -> Any:
        return z3.And(st.ok, sp.capacity(st.post) == 3 * page, st.effects.ncalls() == 0)

    def noop_py(plat: Platform, s: Step) -> bool:
        return s.ok and s.post.capacity(plat) == 3 * page and not s.effects.calls

    def min_cap_z3(sp: SymPlatform, st: SymStep) -> Any:
        cap = sp.capacity(st.post)
        return z3.Implies(st.ok, z3.And(z3.UGE(cap, 2 * page), z3.ULT(cap, 4 * page)))

    def min_cap_py(plat: Platform, s: Step) -> bool:
        cap = s.post.capacity(plat)
        return not s.ok or 2 * page <= cap < 4 * page

    return (
        Scenario(
            "kunit.vmalloc-shrink-frees-pages",
            "a 4-page vmalloc buffer holding one page of u8, shrink_to(0): on Ok, len <= capacity"
            " < 4 pages and physical memory drops",
            (Reserve(4 * page, VMALLOC_ONLY), *pushes(page)),
            0,
            frees_pages_z3,
            frees_pages_py,
            applies=_u8,
            premise=returns_ok,
            premise_text=RETURNS_OK,
        ),
        Scenario(
            "kunit.empty-to-zero",
            "an empty vector with capacity 100, shrink_to(0): Ok and capacity 0",
            (Reserve(100),),
            0,
            empty_z3,
            empty_py,
            applies=_u8,
        ),
        Scenario(
            "kunit.no-page-freed-noop",
            "a 3-page vmalloc buffer holding 2 pages + 1 byte, shrink_to(0): frees no page, so Ok,"
            " no allocator call, capacity unchanged",
            (Reserve(3 * page, VMALLOC_ONLY), *pushes(2 * page + 1)),
            0,
            noop_z3,
            noop_py,
            applies=_u8,
        ),
        Scenario(
            "kunit.min-capacity-kept",
            "a 4-page vmalloc buffer holding 10 bytes, shrink_to(2 pages): on Ok, 2 pages <= capacity < 4 pages",
            (Reserve(4 * page, VMALLOC_ONLY), *pushes(10)),
            2 * page,
            min_cap_z3,
            min_cap_py,
            applies=_u8,
            premise=returns_ok,
            premise_text=RETURNS_OK,
        ),
    )
