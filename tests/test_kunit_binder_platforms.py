"""Binder's models bound to a platform preset: the Z3 checks use its allocator, the explorer keeps its instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.catalogue import model_named
from models.machine import PRESETS
from properties import binder
from properties.registry import all_properties, applicable
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving

SOLVING = Solving(120_000)


def test_a_binder_model_binds_to_every_preset() -> None:
    for preset in PRESETS:
        model = model_named(f"binder/v6@{preset}")
        assert model.policy == "v6" and model.platform == preset
        assert model.machine(8, PRESETS[preset].page_size) == PRESETS[preset].platform(8)


def test_a_bound_binder_model_gets_the_z3_checks_and_not_the_explorers() -> None:
    bound = model_named("binder/v6@arm64-16k")
    page = PRESETS["arm64-16k"].page_size
    checked = {p.id for p in all_properties(page) if applicable(p, bound)}
    explorer = {p.id for p in binder.PROPERTIES if p.method == "explicit-state"}
    assert explorer == {"binder.no-immediate-regrow", "binder.waste-bound", "binder.no-thrash", "binder.reclaim"}
    assert checked == {p.id for p in binder.PROPERTIES if p.applies(model_named("binder/v6"))} - explorer
    # Unbound, the model keeps every binder check (the default run).
    assert explorer <= {p.id for p in all_properties(4096) if applicable(p, model_named("binder/v6"))}


def _regrow_trace(model_name: str, page: int) -> list[str]:
    prop = next(p for p in all_properties(page) if p.id == "binder.no-immediate-regrow.bmc")
    trace = check(prop, model_named(model_name), page, SOLVING).counterexample
    assert trace is not None and trace.model == model_name
    return [f"{s.post.buf.kind.value}:{s.post.buf.physical}" for s in trace.steps if s.post.buf is not None]


def test_a_binder_check_on_a_preset_uses_that_platforms_allocator() -> None:
    # arm64 folds the kmalloc classes below 64 bytes into 64; x86-64 has 8, 16 and 32.
    assert _regrow_trace("binder/v6", 4096)[0] == "kmalloc:8"
    assert _regrow_trace("binder/v6@arm64-4k", 4096)[0] == "kmalloc:64"


def test_verify_run_binder_on_a_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "binder.failed-register-unchanged", "--platform", "arm64-64k", "--no-cache", "--jobs", "1"]
    assert main([*argv, "--counterexamples", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "binder/v6@arm64-64k" in out and "PAGE_SIZE 65536 B" in out
    # The explorer's checks do not depend on the platform: a platform run has none.
    assert main(["run", "binder.no-thrash", "--platform", "arm64-4k", "--counterexamples", str(tmp_path)]) == 2
    assert "no property or model matches" in capsys.readouterr().err
