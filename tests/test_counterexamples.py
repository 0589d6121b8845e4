"""Counterexample files: saved atomically, never overwritten, and every committed one replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.binder import policy_named
from models.catalogue import model_named
from models.vec import VecState, step
from properties.binder import SequenceProperty, replay
from properties.registry import all_properties
from verify.counterexample import TRACE_FORMAT, TraceError, load, load_trace, save
from verify.engine import check

REPO = Path(__file__).resolve().parent.parent


def replays(path: Path) -> bool:
    """Re-execute a saved counterexample on the Python model; True if the violation reproduces."""
    if json.loads(path.read_text()).get("format") == TRACE_FORMAT:
        plat, prop_id, policy, actions, mark = load_trace(path)
        trace_prop = {p.id: p for p in all_properties(plat.page_size)}[prop_id]
        assert isinstance(trace_prop, SequenceProperty)
        return trace_prop.violated(plat, replay(plat, policy_named(policy), actions), mark)
    plat, setup, pre, action, faults, raw = load(path)
    prop = {p.id: p for p in all_properties(plat.page_size)}[raw["property"]]
    assert not isinstance(prop, SequenceProperty)
    state = VecState()
    for a in setup:
        state = step(plat, state, a, faults).post
    if setup:
        assert state == pre
    return not prop.py(plat, step(plat, pre, action, faults))


COMMITTED = sorted((REPO / "counterexamples").glob("*.json"))


def test_the_committed_counterexamples_exist() -> None:
    names = {p.name.split("--")[0] for p in COMMITTED}
    assert {"shrink.physical-never-grows", "shrink.change-lowers-physical", "binder.reclaim"} <= names


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_counterexample_replays(path: Path) -> None:
    assert replays(path)


def _physical_cex() -> object:
    props = {p.id: p for p in all_properties(4096)}
    result = check(props["shrink.physical-never-grows"], model_named("kvvec-v6/u8"), 4096, 60_000)
    assert result.counterexample is not None
    return result.counterexample


def test_save_is_content_named_and_recognises_duplicates(tmp_path: Path) -> None:
    cex = _physical_cex()
    path, fresh = save(cex, tmp_path)  # type: ignore[arg-type]
    assert fresh and path.parent == tmp_path
    again, fresh_again = save(cex, tmp_path)  # type: ignore[arg-type]
    assert again == path and not fresh_again
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    data = json.loads(path.read_text())
    assert data["property"] == "shrink.physical-never-grows" and data["pre"]["buffer"]["kind"] == "vmalloc"
    assert data["post"]["buffer"]["physical"] > data["pre"]["buffer"]["physical"]
    assert replays(path)


def test_save_never_overwrites_a_different_file(tmp_path: Path) -> None:
    cex = _physical_cex()
    target = tmp_path / cex.file_name()  # type: ignore[attr-defined]
    target.write_text("a user's own notes\n")
    with pytest.raises(TraceError, match="refusing to overwrite"):
        save(cex, tmp_path)  # type: ignore[arg-type]
    assert target.read_text() == "a user's own notes\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something-else"}', "not a counterexample file"),
        ('{"format": "verify-counterexample/1", "elem_size": 8}', "malformed counterexample: KeyError"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "verify-counterexample/1"}', "not a binder trace file"),
        ('{"format": "verify-binder-trace/1", "elem_size": 8, "page_size": 64}', "malformed trace: KeyError"),
        ('{"format": "verify-binder-trace/1", "elem_size": 8, "page_size": 100, "steps": [], "property": "x",'
         ' "policy": "v6", "cycle_from": 0}', "malformed trace: ValueError"),
        ("[1, 2]", "a JSON object was expected"),
    ],
)
def test_malformed_binder_traces_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_truncated_committed_trace_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(COMMITTED[0].read_text()[:200])
    with pytest.raises(TraceError, match="not valid JSON"):
        load(path)
