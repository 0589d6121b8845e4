"""verify run --source: every property on the transitions read from kernel source.

On the v6 fixtures the source models get the models' verdicts, row by row; on
the v4 fixtures exactly the differences the series' history predicts: v4's
shrink_to deep-copies a kmalloc buffer (one allocator call is no longer
enough), and v4's policy halves the capacity (no immediate regrow, but the
waste bound is lost).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from models.allocator import Fn, Kind
from models.catalogue import ModelSpec, model_named
from models.machine import Platform
from models.vec import step
from properties.base import Verdict
from properties.registry import all_properties, applicable
from verify.check.engine import Result, check
from verify.cli import main
from verify.search.solver import Solving
from verify.source import steps as source_steps
from verify.traces.trace_input import is_source_model

DATA = Path(__file__).parent / "data" / "source"
PAGE = 4096


def _model(models: Sequence[ModelSpec], name: str) -> ModelSpec:
    (found,) = [m for m in models if m.name == name]
    return found


# Each source model and the catalogue model whose verdicts it is declared to have.
COUNTERPART = {"kvvec-src/u8": "kvvec-v6/u8", "binder-src": "binder/v6"}


@cache
def _rows(kvec: str, binder: str) -> dict[tuple[str, str], tuple[Verdict, Verdict]]:
    """Every property on kvvec-src/u8 and binder-src read from two fixtures: (property, counterpart model) ->
    (the source's verdict, the counterpart's declared verdict, which `verify run all` holds the models to).

    u8 is the one element size the KUnit scenarios also run on; one size keeps the suite's time small.
    """
    models = (_model(source_steps.source_models(DATA / kvec), "kvvec-src/u8"),
              *source_steps.source_models(DATA / binder))
    rows = {}
    for model in models:
        counterpart = model_named(COUNTERPART[model.name])
        props = [p for p in all_properties(PAGE) if applicable(p, model)]
        # All of the counterpart's but the policy-language rule's arithmetic (verify source checks the source's).
        theirs = [p.id for p in all_properties(PAGE) if applicable(p, counterpart)]
        assert [p.id for p in props] == [p for p in theirs if p != "binder.policy-arithmetic"]
        for prop in props:
            result = check(prop, model, PAGE, Solving(60_000))
            assert "internal error" not in result.detail
            declared = Verdict.VIOLATED if prop.expect_violated(counterpart) else Verdict.PROVED
            rows[prop.id, counterpart.name] = (result.verdict, declared)
    return rows


@pytest.mark.slow
def test_v6_fixtures_get_the_models_verdicts_row_by_row() -> None:
    rows = _rows("kvec_v6.rs", "binder_v6.rs")
    assert len(rows) == 43
    assert {row: source for row, (source, _) in rows.items()} == {row: model for row, (_, model) in rows.items()}


@pytest.mark.slow
def test_v4_fixtures_differ_where_the_series_history_says() -> None:
    v4 = _rows("kvec_v4.rs", "binder_v4.rs")
    changed = {row: (model, source) for row, (source, model) in v4.items() if source is not model}
    assert changed == {
        # v4 deep-copies every buffer: a kmalloc shrink is alloc, copy and free, not one krealloc.
        ("shrink.kmalloc-one-realloc", "kvvec-v6/u8"): (Verdict.PROVED, Verdict.VIOLATED),
        # v4 halves the capacity: the last process leaving does not free the list, so no regrow...
        ("binder.no-immediate-regrow", "binder/v6"): (Verdict.VIOLATED, Verdict.PROVED),
        ("binder.no-immediate-regrow.bmc", "binder/v6"): (Verdict.VIOLATED, Verdict.PROVED),
        # ...but after skipped shrinks one halving leaves far more than 4 * (len + 1).
        ("binder.waste-bound", "binder/v6"): (Verdict.PROVED, Verdict.VIOLATED),
    }


def test_a_counterexample_replays_on_the_source_not_on_the_model() -> None:
    """v4's kmalloc violation is v4's deep copy: the model's own shrink_to makes one krealloc from the same input."""
    model = _model(source_steps.source_models(DATA / "kvec_v4.rs"), "kvvec-src/u8")
    prop = next(p for p in all_properties(PAGE) if p.id == "shrink.kmalloc-one-realloc")
    result: Result = check(prop, model, PAGE, Solving(60_000))
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    (taken,) = result.counterexample.steps
    assert taken.pre.buf is not None and taken.pre.buf.kind is Kind.KMALLOC
    own = step(Platform(1, PAGE), taken.pre, taken.action)
    assert [c.fn for c in own.effects.calls] == [Fn.REALLOC]  # the model's one krealloc
    assert [c.fn for c in taken.effects.calls] != [Fn.REALLOC]


def test_run_all_source_on_a_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command: a tree's kvec.rs and context.rs give every source model, checked in worker processes
    (which receive pickled ModelSpecs); a saved trace names its source file, on which `verify replay` replays it."""
    for fixture, inside in (("kvec_v4.rs", source_steps.KVEC), ("binder_v6.rs", source_steps.CONTEXT)):
        (tmp_path / inside).parent.mkdir(parents=True)
        (tmp_path / inside).write_text((DATA / fixture).read_text())
    cex = tmp_path / "cex"
    argv = ["run", "kmalloc-one-realloc", "--source", str(tmp_path), "--no-cache", "--jobs", "2",
            "--counterexamples", str(cex), "--format", "json"]
    assert main(argv) == 1  # v4's deep copy is not as declared for the merged series
    report = json.loads(capsys.readouterr().out)
    rows = {(r["property"], r["model"]): r["verdict"] for r in report["checks"]}
    sized = ("kvvec-src/u8", "kvvec-src/u64", "kvvec-src/t24", "kvvec-src/pow2")
    assert rows == {("shrink.kmalloc-one-realloc", m): "VIOLATED" for m in sized}
    (trace, *_) = sorted(cex.iterdir())
    assert main(["replay", str(trace)]) == 0  # on the tree's kvec.rs, which the trace names
    assert f"on the kernel source {tmp_path / source_steps.KVEC}" in capsys.readouterr().out


def test_binder_src_takes_its_policy_from_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A policy no model has (shrink once len < cap/8) is read from the source, not looked up in the models' table:
    the waste bound fails on it."""
    argv = ["run", "binder.waste-bound", "--source", str(DATA / "binder_trigger_cap8.rs"), "--no-cache",
            "--jobs", "1", "--counterexamples", str(tmp_path)]
    assert main(argv) == 1
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.startswith(f"kernel source: {DATA / 'binder_trigger_cap8.rs'} (SHA-256 ")
    assert rows[0].startswith("VIOLATED  binder.waste-bound") and "binder-src" in rows[0]


@pytest.mark.parametrize(
    ("name", "construct", "at"),
    [("kvec_loop.rs", "while loop", "while target < self.len()"), ("binder_loop.rs", "while loop", "while ")],
)
def test_an_unsupported_construct_is_one_line_with_its_place_and_exit_2(
    name: str, construct: str, at: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / name
    assert main(["run", "all", "--source", str(path), "--no-cache"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    number = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if at in text)
    column = path.read_text().splitlines()[number - 1].index(at) + 1
    assert line.startswith(f"verify: error: {path}:{number}:{column}: unsupported {construct}")
    assert captured.out == ""  # no check ran


def test_source_models_are_named_as_the_trace_reader_knows_them() -> None:
    models = [*source_steps.source_models(DATA / "kvec_v6.rs"), *source_steps.source_models(DATA / "binder_v6.rs")]
    assert [m.name for m in models] == [
        "kvvec-src/zst", "kvvec-src/u8", "kvvec-src/u64", "kvvec-src/t24", "kvvec-src/pow2", "binder-src"]
    assert all(is_source_model(m.name) and is_source_model(m.with_platform("arm64-4k").name) for m in models)
    assert not is_source_model("kvvec-v6/u8") and not is_source_model("binder/v6")


def test_fault_and_a_missing_source_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "all", "--source", "/nonexistent"]) == 2
    assert main(["run", "all", "--source", str(DATA / "kvec_v6.rs"), "--fault", "target-min"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "no such file" in err[0] and "--fault" in err[1]
