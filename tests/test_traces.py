"""ITF traces: every committed one replays; saving is atomic and never overwrites; show, replay and graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import itf_py
import pytest

from models.catalogue import model_named
from properties.registry import all_properties
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving
from verify.traces.replay import replay
from verify.traces.trace import FORMAT, Trace, TraceError, from_itf, load, save, value_from_itf

REPO = Path(__file__).resolve().parent.parent
COMMITTED = sorted((REPO / "counterexamples").glob("*.itf.json"))
PROPS = {p.id: p for p in all_properties(4096)}


def test_the_findings_are_committed() -> None:
    names = {p.name.split("--")[0] for p in COMMITTED}
    assert {"shrink.physical-never-grows", "shrink.change-lowers-physical", "binder.reclaim"} <= names


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_trace_is_itf_and_replays(path: Path) -> None:
    raw = json.loads(path.read_text())
    parsed = itf_py.trace_from_json(raw)
    assert parsed.meta["format"] == FORMAT and parsed.meta["failing_step"] == len(parsed.states) - 1
    assert {"solver", "tool", "seed", "parameters", "variant", "property", "model"} <= set(parsed.meta)
    assert replay(load(path)).reproduces


def _shape(value: Any) -> Any:
    """A decoded value with its types spelled out: records by field names, lists apart from tuples."""
    if hasattr(value, "_fields"):
        return ("record", value._fields, [_shape(v) for v in value])
    if isinstance(value, (list, tuple, frozenset)):
        return (type(value).__name__, [_shape(v) for v in value])
    if isinstance(value, dict):
        return (type(value).__name__, {k: _shape(v) for k, v in value.items()})
    return (type(value).__name__, value)


def _itf_states(trace: itf_py.Trace) -> Any:
    return [(s.meta, _shape(s.values)) for s in trace.states]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_traces_are_read_to_the_values_itf_py_reads(path: Path) -> None:
    raw = json.loads(path.read_text())
    mine, theirs = from_itf(raw), itf_py.trace_from_json(raw)
    assert _itf_states(mine) == _itf_states(theirs)
    assert (mine.meta, mine.params, mine.vars, mine.loop) == (theirs.meta, theirs.params, theirs.vars, theirs.loop)


@pytest.mark.parametrize("value", [
    {"#set": [1, {"#bigint": "2"}]}, {"#map": [[1, [2]]]}, {"tag": "Some", "value": {"x": 1}},
    {"tag": "Empty", "value": "u"}, {"#unserializable": "f"}, {"a": [{"#tup": [1, {"b": True}]}], "c": None},
])
def test_every_kind_of_itf_value_is_read_as_itf_py_reads_it(value: Any) -> None:
    assert _shape(value_from_itf(value)) == _shape(itf_py.value_from_json(value))


def _trace(prop_id: str, model: str) -> Trace:
    result = check(PROPS[prop_id], model_named(model), 4096, Solving(60_000))
    assert result.counterexample is not None
    return result.counterexample


def test_save_is_content_named_and_recognises_duplicates(tmp_path: Path) -> None:
    trace = _trace("shrink.physical-never-grows", "kvvec-v6/u8")
    path, fresh = save(trace, tmp_path)
    assert fresh and path.name.startswith("shrink.physical-never-grows--kvvec-v6_u8--")
    assert path.name.endswith(".itf.json")
    assert save(trace, tmp_path) == (path, False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    loaded = load(path)
    assert loaded.states[0]["backend"] == "vmalloc" and loaded.states[1]["backend"] == "kmalloc"
    assert loaded.states[1]["physical"] > loaded.states[0]["physical"]


def test_save_never_overwrites_a_different_file(tmp_path: Path) -> None:
    trace = _trace("shrink.physical-never-grows", "kvvec-v6/u8")
    target = tmp_path / trace.file_name()
    target.write_text("a user's own notes\n")
    with pytest.raises(TraceError, match="refusing to overwrite"):
        save(trace, tmp_path)
    assert target.read_text() == "a user's own notes\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def _broken(tmp_path: Path, edit: str) -> Path:
    raw = json.loads(COMMITTED[0].read_text())
    if edit == "failing_step":
        raw["#meta"]["failing_step"] = 99
    elif edit == "format":
        raw["#meta"]["format"] = "something-else"
    elif edit == "op":
        raw["states"][1]["action"]["op"] = "Frobnicate"
    elif edit == "states":
        del raw["states"]
    path = tmp_path / f"{edit}.itf.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("failing_step", "#meta.failing_step: 99, but the trace has 5 operations"),
        ("format", "not a verify trace"),
        ("op", "states/1/action/op: 'Frobnicate' is not one of"),
        ("states", "top level: 'states' is a required property"),
    ],
)
def test_wrong_schema_is_one_clear_error(tmp_path: Path, edit: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load(_broken(tmp_path, edit))


@pytest.mark.parametrize(
    ("content", "message"), [("{not json", "not valid JSON"), ("", "not valid JSON"), ("[1, 2]", "no #meta record")]
)
def test_malformed_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load(path)


def test_truncated_trace_is_exit_two_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.itf.json"
    path.write_text(COMMITTED[0].read_text()[:300])
    for argv in (["show", str(path)], ["replay", str(path)], ["show", str(path), "--as-pytest"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not valid JSON" in err


def test_replay_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binder = next(p for p in COMMITTED if p.name.startswith("binder.no-immediate-regrow--binder_naive"))
    assert main(["replay", str(binder)]) == 0
    assert "reproduces: binder.no-immediate-regrow fails at step 5" in capsys.readouterr().out
    # The same operations judged by another property of naive, which they do not break: no violation.
    raw = json.loads(binder.read_text())
    raw["#meta"]["property"] = "binder.waste-bound"
    other = tmp_path / "as-waste.itf.json"
    other.write_text(json.dumps(raw))
    assert main(["replay", str(other)]) == 1
    assert "does not reproduce" in capsys.readouterr().out
    # Labelled as a trace of v4, while the model is naive: refused before any replay.
    raw = json.loads(binder.read_text())
    raw["#meta"]["variant"]["policy"] = "v4"
    other.write_text(json.dumps(raw))
    assert main(["replay", str(other)]) == 2
    assert "#meta.variant.policy: 'v4' is not the policy of binder/naive" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.itf.json")]) == 2


def test_show_prints_the_step_table_with_changes_and_the_broken_predicate(capsys: pytest.CaptureFixture[str]) -> None:
    path = next(p for p in COMMITTED if p.name.startswith("shrink.physical-never-grows--kvvec-v6_u64"))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["step", "action", "outcome", "result", "len", "capacity", "backend", "layout", "B",
                              "physical", "B", "pages"]
    assert out[3].split()[:4] == ["1", "shrink_to(2049)", "k:ok", "v:ok"]
    assert "kmalloc*" in out[3] and "32768*" in out[3] and "8*" in out[3]
    assert "fails at step 1: the physical memory held after shrink_to never exceeds what was held before" in out
    assert "  len 0 -> 0, capacity 2561 -> 2049, physical 24576 -> 32768 bytes, result Ok" in out


def test_graph_highlights_the_trace_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = next(p for p in COMMITTED if p.name.startswith("binder.no-immediate-regrow--binder_naive"))
    out = tmp_path / "g.dot"
    argv = ["graph", "--policy", "naive", "--max-capacity", "6", "--trace", str(trace), "--output", str(out)]
    assert main(argv) == 0
    dot = out.read_text()
    assert dot.startswith("digraph explored {") and "12 states, 24 edges" in dot
    assert dot.count("color=red, penwidth=2];") >= 5 and dot.rstrip().endswith("}")
    # An existing file is never overwritten.
    assert main(argv) == 2
    assert "exists; choose another name" in capsys.readouterr().err
    assert main(["graph", "--policy", "v5"]) == 2
    assert main(["graph", "--policy", "v6", "--trace", str(trace)]) == 2  # the trace is of policy naive
