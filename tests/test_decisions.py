"""The seeded faults override named decision points, the same ones in both encodings."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from models import allocator, allocator_z3, vec, vec_z3
from models.faults import (
    ALLOCATOR_FAULTS,
    BINDER_VEC_FAULTS,
    GENERIC_FAULTS,
    PLATFORM_FAULTS,
    SHRINK_FAULTS,
    DecisionPoints,
    Override,
)

TABLES = [
    ("shrink_to", vec.SHRINK_OVERRIDES, vec_z3.SHRINK_OVERRIDES),
    ("generic shrink_to", vec.GENERIC_SHRINK_OVERRIDES, vec_z3.GENERIC_SHRINK_OVERRIDES),
    ("push", vec.PUSH_OVERRIDES, vec_z3.PUSH_OVERRIDES),
    ("retain", vec.RETAIN_OVERRIDES, vec_z3.RETAIN_OVERRIDES),
    ("allocators", allocator.OVERRIDES, allocator_z3.OVERRIDES),
]


@pytest.mark.parametrize(("name", "python", "z3_side"), TABLES, ids=[t[0] for t in TABLES])
def test_both_encodings_override_the_same_points_in_the_same_order(
    name: str, python: dict[str, tuple[str, Override]], z3_side: dict[str, tuple[str, Override]]
) -> None:
    assert [(fault, point) for fault, (point, _) in python.items()] == [
        (fault, point) for fault, (point, _) in z3_side.items()
    ]


def test_every_model_fault_overrides_exactly_one_point() -> None:
    seeded = [fault for _, table, _ in TABLES for fault in table]
    assert len(seeded) == len(set(seeded))
    assert set(seeded) == {*SHRINK_FAULTS, *ALLOCATOR_FAULTS, *PLATFORM_FAULTS, *BINDER_VEC_FAULTS, *GENERIC_FAULTS}


@pytest.mark.parametrize("module", [vec, vec_z3, allocator, allocator_z3])
def test_no_fault_is_tested_inline_in_a_model(module: object) -> None:
    # The main line reads like the kernel's: faults live in the override tables only.
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert "in faults" not in source and "in rec.faults" not in source


TABLE: dict[str, tuple[str, Override]] = {
    "replace": ("x", lambda ctx, kernel, a, b: ctx + a),
    "wrap": ("x", lambda ctx, kernel, a, b: kernel() * 10),
    "other": ("y", lambda ctx, kernel, a, b: -1),
}


def test_a_point_without_its_fault_is_the_kernel_rule() -> None:
    at = DecisionPoints(frozenset({"other"}), TABLE, 100)
    assert at("x", max, 3, 4) == 4


def test_overrides_apply_in_table_order_each_over_the_value_before() -> None:
    assert DecisionPoints(frozenset({"replace"}), TABLE, 100)("x", max, 3, 4) == 103
    assert DecisionPoints(frozenset({"wrap"}), TABLE, 100)("x", max, 3, 4) == 40
    assert DecisionPoints(frozenset({"replace", "wrap"}), TABLE, 100)("x", max, 3, 4) == 1030


def test_a_replaced_rule_is_never_evaluated() -> None:
    def rule(a: int, b: int) -> int:
        raise AssertionError("the kernel rule ran although a fault replaced it")

    assert DecisionPoints(frozenset({"replace"}), TABLE, 100)("x", rule, 3, 4) == 103


DOC = Path(__file__).parent.parent / "docs" / "shrink_to-side-by-side.md"


def test_the_side_by_side_doc_quotes_lines_that_are_in_the_model() -> None:
    model_lines = {line.strip() for line in inspect.getsource(vec.shrink_to).splitlines()}
    steps = DOC.read_text().split("## The steps")[1].split("## Which fault")[0]
    quoted = re.findall(r"\| `([^`]+)` \|$", steps, re.M)
    assert len(quoted) >= 20
    assert [line for line in quoted if line not in model_lines] == []


def test_the_side_by_side_doc_lists_every_shrink_fault_once() -> None:
    rows = re.findall(r"^\| `[^`]+` \| .* \| (.*) \|$", DOC.read_text(), re.M)
    listed = [fault for row in rows for fault in re.findall(r"`([^`]+)`", row)]
    assert sorted(listed) == sorted(vec.SHRINK_OVERRIDES)
    assert "docs/shrink_to-side-by-side.md" in (DOC.parent.parent / "README.md").read_text()
