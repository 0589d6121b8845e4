"""The engine still finds the README's Findings, with the numbers the README states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.binder import Register
from models.catalogue import model_named
from models.machine import Platform
from models.vec import Step
from properties.base import Verdict
from properties.registry import all_properties
from verify.check.engine import Result, check
from verify.search.solver import Solving

PAGE, TIMEOUT_MS = 4096, 60_000
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _row(prop_id: str) -> str:
    """The README Findings row that starts with this property."""
    findings = README[README.index("## Findings") :]
    return next(line for line in findings.splitlines() if line.startswith(f"| `{prop_id}`"))


def _numbers(text: str, pattern: str) -> tuple[int, ...]:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in {text!r}"
    return tuple(int(g) for g in found.groups())


def _run(prop_id: str, model: str, page: int = PAGE) -> Result:
    prop = next(p for p in all_properties(page) if p.id == prop_id)
    result = check(prop, model_named(model), page, Solving(TIMEOUT_MS))
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    return result


def test_physical_never_grows_finding() -> None:
    row = _row("shrink.physical-never-grows")
    cap, pages, target, new_cap, object_bytes, new_pages = (
        *_numbers(row, r"len=0 cap=(\d+)`, vmalloc, (\d+) pages; `shrink_to\((\d+)\)`"),
        *_numbers(row, r"`cap=(\d+)` in a kmalloc object of (\d+) bytes \((\d+) pages\)"),
    )
    trace = _run("shrink.physical-never-grows", "kvvec-v6/u8").counterexample
    assert trace is not None
    s = trace.steps[-1]
    assert isinstance(s, Step) and s.pre.buf is not None and s.post.buf is not None
    assert (s.pre.len, s.pre.layout_len, s.pre.buf.kind.value) == (0, cap, "vmalloc")
    assert s.pre.buf.physical == pages * PAGE
    assert s.action.min_capacity == target and s.action.outcome.kmalloc_ok and s.ok  # type: ignore[union-attr]
    assert (s.post.layout_len, s.post.buf.kind.value, s.post.buf.physical) == (new_cap, "kmalloc", object_bytes)
    assert object_bytes == new_pages * PAGE > s.pre.buf.physical


def test_change_lowers_physical_finding() -> None:
    row = _row("shrink.change-lowers-physical")
    cap, object_bytes, target, new_cap = (
        *_numbers(row, r"len=0 cap=(\d+)`, kmalloc object of (\d+) bytes; `shrink_to\((\d+)\)`"),
        *_numbers(row, r"Ok, `cap=(\d+)`"),
    )
    trace = _run("shrink.change-lowers-physical", "kvvec-v6/u8").counterexample
    assert trace is not None
    s = trace.steps[-1]
    assert isinstance(s, Step) and s.pre.buf is not None and s.post.buf is not None
    assert (s.pre.len, s.pre.layout_len, s.pre.buf.kind.value) == (0, cap, "kmalloc")
    assert s.pre.buf.physical == object_bytes
    assert s.action.min_capacity == target and s.ok  # type: ignore[union-attr]
    assert (s.post.layout_len, s.post.buf.id, s.post.buf.physical) == (new_cap, s.pre.buf.id, object_bytes)


def test_reclaim_finding() -> None:
    row = _row("binder.reclaim")
    page = _numbers(row, r"PAGE_SIZE (\d+): register")[0]
    registered, cap, object_bytes = _numbers(row, r"register (\d+) processes \(capacity (\d+), a (\d+)-byte kmalloc")
    shrink_from, shrink_to = _numbers(row, r"shrinks the capacity (\d+) → (\d+) at one process")
    bound = _numbers(row, r"a fresh buffer for the bound takes (\d+) bytes")[0]
    trace = _run("binder.reclaim", "binder/v6", page).counterexample
    assert trace is not None and trace.page_size == page
    steps = trace.steps
    kinds = [isinstance(s.action, Register) for s in steps]
    assert kinds == [True] * registered + [False] * registered
    peak = steps[registered - 1].post
    assert peak.buf is not None
    assert (peak.layout_len, peak.buf.kind.value, peak.buf.physical) == (cap, "kmalloc", object_bytes)
    shrinks = [(s.pre.layout_len, s.post.layout_len, s.post.len) for s in steps[registered:] if s.reallocates]
    assert shrinks == [(shrink_from, shrink_to, 1)]
    last = steps[-1].post
    assert last.len == 0 and last.physical() == object_bytes
    from properties.binder import reclaim_bound

    assert reclaim_bound(Platform(8, page), 0) == bound < object_bytes


def test_v6_regrow_finding() -> None:
    row = _row("binder.no-immediate-regrow")
    assert row.startswith("| `binder.no-immediate-regrow` (v6) |")
    n, cap = _numbers(row, r"register (\d+) \(capacity (\d+)\), deregister \1")
    trace = _run("binder.no-immediate-regrow", "binder/v6").counterexample
    assert trace is not None
    kinds = [isinstance(s.action, Register) for s in trace.steps]
    assert kinds == [True] * n + [False] * n + [True]
    last_out, again = trace.steps[-2], trace.steps[-1]
    assert (last_out.pre.layout_len, last_out.post.layout_len, last_out.post.buf) == (cap, 0, None)
    assert again.reallocates and again.post.buf is not None


@pytest.mark.parametrize(("policy", "ops"), [("naive", 5), ("v4", None)])
def test_policy_table_regrow_column(policy: str, ops: int | None) -> None:
    prop = next(p for p in all_properties(PAGE) if p.id == "binder.no-immediate-regrow")
    result = check(prop, model_named(f"binder/{policy}"), PAGE, Solving(TIMEOUT_MS))
    if ops is None:
        assert result.verdict is Verdict.PROVED
    else:
        assert result.counterexample is not None and len(result.counterexample.steps) == ops


def test_v4_waste_finding() -> None:
    # README policy table: after skipped shrinks, one halving leaves capacity 8 for 1 process.
    trace = _run("binder.waste-bound", "binder/v4", 64).counterexample
    assert trace is not None
    last = trace.steps[-1]
    assert (last.pre.layout_len, last.post.layout_len, last.post.len) == (16, 8, 1)
    assert any(s.shrink_attempted and not s.steps[-1].ok for s in trace.steps[:-1])  # type: ignore[union-attr]
    assert len(trace.steps) == 17


def test_never_waste_bmc_finding() -> None:
    # "registering 4 processes and deregistering them leaves capacity 4 with len 0"
    trace = _run("binder.waste-bound.bmc", "binder/never").counterexample
    assert trace is not None
    last = trace.steps[-1].post
    assert last.layout_len >= 4 * (last.len + 1)
    kinds = [isinstance(s.action, Register) for s in trace.steps]
    assert kinds.count(True) == 4 and kinds[-1] is False and (last.layout_len, last.len) == (4, 0)
