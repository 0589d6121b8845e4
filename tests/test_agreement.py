"""The two encodings agree on the allocator functions and the type invariants, over whole domains."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from models import allocator_z3
from models.allocator import ALL_OUTCOMES, Allocation, Kind, allocation_violations
from models.allocator_z3 import SymAlloc, u64
from models.elements import Elements
from models.machine import ISIZE_MAX, USIZE_MAX, Platform
from models.vec import VecState
from verify.check import agreement
from verify.check.agreement import Agreement, all_agreements
from verify.check.crosscheck import check_invariants


@pytest.fixture(scope="module")
def agreements() -> list[Agreement]:
    return list(all_agreements((64, 4096)))


def test_every_function_agrees_on_the_explorers_and_the_default_page(agreements: list[Agreement]) -> None:
    assert [a.line() for a in agreements if a.disagreements] == []
    names = {a.name for a in agreements}
    assert {"kmalloc_physical", "vmalloc_physical", "allocation well-formed", "div_ceil by PAGE_SIZE"} <= names
    assert {f"kvmalloc ({o.describe()})" for o in ALL_OUTCOMES} <= names
    assert {f"type invariants (T of {s} B)" for s in agreement.ELEM_SIZES} <= names


def test_below_two_pages_every_request_size_is_compared(agreements: list[Agreement]) -> None:
    for a in agreements:
        if a.name == "kmalloc_physical":
            # Every byte count up to two pages, then three edges of every page count up to KMALLOC_MAX_SIZE.
            assert a.values >= 2 * a.page_size + 3 * (1024 - 2)
            assert a.proofs >= len([c for c in (8, 16, 32, 64, 96, 128, 192) if c <= 2 * a.page_size])


def test_the_invariant_grid_has_valid_and_invalid_states() -> None:
    plat = Platform(8, 4096)
    states = list(agreement.invariant_states(plat))
    valid = [s for s in states if not s.invariant_violations(plat)]
    assert len(valid) >= 10 and len(states) - len(valid) >= 500
    broken = {clause for s in states for clause in s.invariant_violations(plat)}
    assert len(broken) >= 8  # every clause is broken somewhere (but the elements one, which Z3 does not state)


def test_a_size_class_missing_from_the_z3_side_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    without_96 = (8, 16, 32, 64, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
    monkeypatch.setattr(allocator_z3, "kmalloc_size_classes", lambda page, align=8: without_96)
    found = agreement.kmalloc_physical(Platform(1, 4096))
    assert len(found.disagreements) == 1
    assert found.disagreements[0].startswith("n in 65..96: Python (96,), Z3 differs at n = ")


def test_a_clause_dropped_from_the_z3_invariant_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    original = agreement.type_invariant
    monkeypatch.setattr(agreement, "type_invariant", lambda sp, v: original(sp, v, ghost=False))
    found = agreement.type_invariants(Platform(8, 4096))
    assert found.disagreements and all("allocation ids are below next_id" in d for d in found.disagreements)


def test_a_clause_dropped_from_the_python_invariant_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agreement.kv, "allocation_violations", lambda plat, a: [])
    found = agreement.allocation_well_formed(Platform(1, 4096))
    assert len(found.disagreements) > 100 and "Python True, Z3 False" in found.disagreements[0]


def test_a_vmalloc_area_near_usize_max_is_malformed_on_both_sides() -> None:
    # Its pages do not fit in a usize: the Z3 side once wrapped them to 0 and called the area well formed.
    plat = Platform(1, 4096)
    assert allocation_violations(plat, Allocation(1, Kind.VMALLOC, USIZE_MAX, 0))
    sym = SymAlloc(z3.BoolVal(True), u64(1), z3.BoolVal(True), u64(USIZE_MAX), u64(0))
    assert z3.is_false(z3.simplify(allocator_z3.allocation_well_formed(plat, sym)))


# Beyond the grid: arbitrary states, most of them invalid, drawn near every field's boundaries.
def _near(*edges: int) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted({max(0, min(USIZE_MAX, e + d)) for e in edges for d in (-1, 0, 1)}))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data(), elem_size=st.sampled_from(agreement.ELEM_SIZES), kind=st.sampled_from([None, *Kind]))
def test_arbitrary_states_get_the_same_verdict_from_both_invariants(
    data: st.DataObject, elem_size: int, kind: Kind | None
) -> None:
    plat = Platform(elem_size, 4096)
    counts = st.one_of(st.integers(0, 20), _near(4096, ISIZE_MAX // max(elem_size, 1), USIZE_MAX))
    layout_len = data.draw(counts, label="layout_len")
    length = data.draw(st.one_of(_near(layout_len), counts), label="len")
    buf = None
    if kind is not None:
        nbytes = layout_len * elem_size
        requested = data.draw(st.one_of(_near(nbytes, 4096, 8192), st.integers(0, USIZE_MAX)), label="requested")
        physical = data.draw(st.one_of(_near(0, requested, 4096, 8192), st.integers(0, USIZE_MAX)), label="phys")
        buf = Allocation(1, kind, requested, physical)
    state = VecState(length, layout_len, buf, Elements.identities(length), data.draw(st.integers(1, 2)))
    check_invariants(plat, state)  # raises CrossCheckError when Z3's type invariant and the Python model's part
