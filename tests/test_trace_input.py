"""A trace file is untrusted input: each way a trace was found to crash `verify` or confirm a false violation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.catalogue import model_named
from properties.registry import all_properties
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving
from verify.traces.replay import replay
from verify.traces.trace import Trace, TraceError, load, load_text

REPO = Path(__file__).resolve().parent.parent
COMMITTED = sorted((REPO / "counterexamples").glob("*.itf.json"))
PROPS = {p.id: p for p in all_properties(4096)}


def committed(prefix: str) -> Path:
    return next(p for p in COMMITTED if p.name.startswith(prefix + "--"))


def doc(prefix: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(committed(prefix).read_text())
    return raw


def written(tmp_path: Path, content: dict[str, Any] | str, name: str = "t.itf.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    return path


def refused(path: Path, message: str) -> str:
    with pytest.raises(TraceError, match=message) as raised:
        replay(load(path))
    text = str(raised.value)
    assert "\n" not in text
    return text


def big(n: int) -> dict[str, str]:
    return {"#bigint": str(n)}


GROWS_U8 = "shrink.physical-never-grows--kvvec-v6_u8"
GROWS_U64 = "shrink.physical-never-grows--kvvec-v6_u64"
REGROW_NAIVE = "binder.no-immediate-regrow--binder_naive"
RECLAIM_V6 = "binder.reclaim--binder_v6"
WASTE_V4 = "binder.waste-bound--binder_v4"


# --- the file and its JSON ------------------------------------------------------------------


def test_deep_nesting_is_refused_before_parsing(tmp_path: Path) -> None:
    # json.loads recursed until RecursionError.
    text = committed(GROWS_U8).read_text().replace('"states": [', '"states": [' + "[" * 100_000, 1)
    refused(written(tmp_path, text), r"JSON nested 1000\d\d deep; a trace nests at most 16 deep")


@pytest.mark.parametrize(
    ("number", "message"),
    [("Infinity", "Infinity is not a number a trace can hold"), ("NaN", "NaN is not a number"),
     ("-Infinity", "-Infinity is not a number"), ("1.5", "the number 1.5 is not an integer"),
     ("1e400", "the number 1e400 is not an integer"), ("1" * 400, "has more than 20 digits")],
)
def test_no_floats_nan_or_infinity(tmp_path: Path, number: str, message: str) -> None:
    # Infinity as a page size crashed with OverflowError.
    text = committed(GROWS_U8).read_text().replace('"page_size": 4096', f'"page_size": {number}')
    refused(written(tmp_path, text), message)


def test_a_repeated_key_is_refused(tmp_path: Path) -> None:
    text = committed(GROWS_U8).read_text().replace('"page_size": 4096', '"page_size": 4096, "page_size": 16384')
    refused(written(tmp_path, text), "the key 'page_size' appears twice in one object")


def test_devices_fifos_directories_and_huge_files_are_not_read(tmp_path: Path) -> None:
    refused(Path("/dev/zero"), "/dev/zero: not a regular file")  # was read until MemoryError
    refused(tmp_path, "not a regular file")
    huge = tmp_path / "huge.itf.json"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # sparse
    refused(huge, "1073741824 bytes, more than a trace may have")
    refused(tmp_path / "missing.itf.json", "cannot read: No such file or directory")
    binary = written(tmp_path, "", "binary.itf.json")
    binary.write_bytes(b'{"#meta": "\xff"}')
    refused(binary, "not UTF-8 text")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.itf.json"
    os.mkfifo(fifo)  # nobody writes to it: reading it used to block forever
    for argv in (["replay", str(fifo)], ["show", str(fifo), "--as-kunit"]):
        done = subprocess.run([sys.executable, "-m", "verify", *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stderr == f"verify: error: {fifo}: not a regular file\n"


def test_an_unprintable_file_name_stays_one_line(tmp_path: Path) -> None:
    path = written(tmp_path, "{", "bad\nname.itf.json")
    message = refused(path, "not valid JSON")
    assert "bad\\nname" in message


# --- the schema --------------------------------------------------------------------------------


def test_a_string_min_capacity_is_refused(tmp_path: Path) -> None:
    raw = doc(GROWS_U8)
    raw["states"][1]["action"]["min_capacity"] = "a lot"  # was a TypeError in models/vec.py
    refused(written(tmp_path, raw), r"states/1/action/min_capacity: 'a lot' is not valid")


def test_missing_keys_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = doc(REGROW_NAIVE)
    del raw["#meta"]["variant"]["policy"]  # was KeyError: 'policy'
    refused(written(tmp_path, raw), "#meta/variant: 'policy' is a required property")
    raw = doc(GROWS_U8)
    del raw["states"][1]["capacity"]  # was KeyError: 'capacity' in show
    path = written(tmp_path, raw)
    refused(path, "states/1: 'capacity' is a required property")
    assert main(["show", str(path)]) == 2
    assert capsys.readouterr().err == f"verify: error: {path}: states/1: 'capacity' is a required property\n"


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    raw = doc(GROWS_U8)
    raw["states"][0]["capacity_hint"] = 5
    refused(written(tmp_path, raw), r"states/0: Additional properties are not allowed \('capacity_hint'")


@pytest.mark.parametrize(
    ("value", "message"),
    [(big(2**64), "states/1/len: above 2\\^64 - 1"), (2**64, "states/1/len: 18446744073709551616 is greater than"),
     (big(-3), "states/1/len/#bigint: '-3' does not match"), (-3, "states/1/len: -3 is less than the minimum of 0"),
     (True, "states/1/len: True is not valid")],
)
def test_integers_are_unsigned_64_bit(tmp_path: Path, value: Any, message: str) -> None:
    raw = doc(GROWS_U8)
    raw["states"][1]["len"] = value
    refused(written(tmp_path, raw), message)


# --- #meta against the catalogue --------------------------------------------------------------


def _meta_edit(prefix: str, edit: dict[str, Any]) -> dict[str, Any]:
    raw = doc(prefix)
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        target = raw["#meta"]
        for p in parents:
            target = target[p]
        target[last] = value
    return raw


@pytest.mark.parametrize(
    ("prefix", "edit", "message"),
    [
        # A trace labelled binder/v6 that runs policy v4 "reproduced" binder.waste-bound.
        (WASTE_V4, {"model": "binder/v6"}, "#meta.variant.policy: 'v4' is not the policy of binder/v6"),
        (WASTE_V4, {"model": "binder/v5"}, "#meta.model: 'binder/v5' is not a model of the catalogue"),
        # An element size the model does not have crashed in models/binder.py (AssertionError).
        (RECLAIM_V6, {"parameters.elem_size": 16}, "#meta.parameters.elem_size: 16 is not an element size of"),
        (GROWS_U8, {"parameters.elem_size": 3}, "16 is not|3 is not an element size of kvvec-v6/u8"),
        (GROWS_U8, {"parameters.page_size": 8192}, "#meta.parameters.page_size: 8192 is not a PAGE_SIZE"),
        (GROWS_U8, {"parameters.page_size": 64}, "#meta.parameters.page_size: 64 is not a PAGE_SIZE"),
        (GROWS_U8, {"model": "kvvec-v6/u8!no-such-fault"}, "is not a model of the catalogue"),
        (GROWS_U8, {"model": "kvvec-v6/u8!always-noop"}, "#meta.variant.faults: \\[\\] are not the faults of"),
        (GROWS_U8, {"variant.faults": ["always-noop"]}, "#meta.variant.faults: \\['always-noop'\\] are not"),
        (GROWS_U8, {"variant.policy": "v6"}, "#meta.variant.policy: 'v6' is not the policy of kvvec-v6/u8"),
        (GROWS_U8, {"property": "shrink.nothing"}, "#meta.property: 'shrink.nothing' is not a property"),
        (GROWS_U8, {"property": "binder.reclaim"}, "#meta.property: binder.reclaim does not apply to kvvec-v6/u8"),
        (GROWS_U8, {"property": "kunit.empty"}, "#meta.start: 'arbitrary': a trace of kunit.empty starts setup"),
        (GROWS_U8, {"start": "new"}, "#meta.start: 'new': a trace of shrink.physical-never-grows starts arbitrary"),
        (REGROW_NAIVE, {"start": "setup"}, "#meta.start: 'setup': a trace of binder.no-immediate-regrow starts"),
        (GROWS_U8, {"setup": [{"op": "Clear"}]}, "#meta.setup: only a trace that starts from its setup has one"),
        (GROWS_U8, {"cycle_from": 0}, "#meta.cycle_from: shrink.physical-never-grows is not about a cycle"),
        (REGROW_NAIVE, {"cycle_from": 5}, "#meta.cycle_from: 5 is not one of the 5 operations"),
        (REGROW_NAIVE, {"cycle_from": 2}, "loop: None, but #meta.cycle_from is 2"),
        (REGROW_NAIVE, {"failing_step": 4}, "#meta.failing_step: 4, but the trace has 5 operations"),
        (GROWS_U8, {"format": "verify-trace/1"}, "not a verify trace .*expected 'verify-trace/2'"),
    ],
)
def test_meta_must_match_a_model_of_the_catalogue(
    tmp_path: Path, prefix: str, edit: dict[str, Any], message: str
) -> None:
    refused(written(tmp_path, _meta_edit(prefix, edit)), message)


# --- state 0 and every recorded state ------------------------------------------------------------


def test_a_start_state_breaking_the_type_invariants_is_refused(tmp_path: Path) -> None:
    # len 5 in a capacity of 2 "reproduced" shrink.invariants-kept, which is PROVED.
    raw = _meta_edit(GROWS_U8, {"property": "shrink.invariants-kept"})
    raw["states"][0].update(
        len=big(5), elements=[{"#tup": [big(0), big(5)]}], backend="kmalloc", layout_len=big(2), capacity=big(2),
        layout_bytes=big(2), requested=big(2), physical=big(8), pages=big(1),
    )
    refused(written(tmp_path, raw), "states/0: the start state breaks the type invariant 'len <= capacity'")


def test_a_start_with_a_2_to_the_62_layout_is_refused(tmp_path: Path) -> None:
    # 2^62 elements of 8 bytes "reproduced" shrink.no-overflow, which is PROVED.
    raw = _meta_edit(GROWS_U64, {"property": "shrink.no-overflow"})
    n = 2**62
    raw["states"][0].update(layout_len=big(n), capacity=big(n))
    refused(written(tmp_path, raw), "states/0: the start state breaks the type invariant 'layout bytes <= isize::MAX'")


def test_a_recorded_state_that_the_replay_does_not_compute_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = doc(RECLAIM_V6)
    raw["states"][3]["capacity"] = big(int(raw["states"][3]["capacity"]["#bigint"]) + 1)
    path = written(tmp_path, raw)
    refused(path, "states/3/capacity: recorded 5, but the replay computes 4")
    # `show` printed the recorded values next to "the violation reproduces".
    assert main(["show", str(path)]) == 2
    assert "states/3/capacity" in capsys.readouterr().err


def test_a_derived_value_of_an_arbitrary_start_is_checked(tmp_path: Path) -> None:
    raw = doc(GROWS_U8)
    raw["states"][0]["pages"] = big(7)
    refused(written(tmp_path, raw), r"states/0/pages: recorded 7, but the start \(arbitrary\) has 6")


def test_a_trace_from_new_must_start_at_kvvec_new(tmp_path: Path) -> None:
    raw = doc(REGROW_NAIVE)
    raw["states"][0]["next_id"] = big(5)
    refused(written(tmp_path, raw), r"states/0/next_id: recorded 5, but the start \(new\) has 1")


def test_an_edited_outcome_or_operation_is_refused(tmp_path: Path) -> None:
    raw = doc(GROWS_U8)
    raw["states"][1]["action"]["min_capacity"] = big(16386)
    refused(written(tmp_path, raw), "states/1/capacity: recorded 16385, but the replay computes 16386")
    raw = doc(GROWS_U8)
    raw["states"][1]["outcome"]["relevant"] = False
    refused(written(tmp_path, raw), "states/1/outcome: recorded")


def test_every_committed_trace_reproduces_where_it_says() -> None:
    for path in COMMITTED:
        replayed = replay(load(path))
        assert replayed.reproduces, path.name
        assert replayed.trace.text() == path.read_text(), path.name  # the very file, recomputed


# --- binder traces from an arbitrary state; scenario traces from their setup ----------------------


def _binder_suffix(k: int, start: str = "arbitrary") -> Trace:
    """The naive regrow trace without its first k operations: from the state they reach."""
    full = replay(load(committed(REGROW_NAIVE))).trace
    steps = full.steps[k:]
    return Trace(full.property_id, full.model, full.elem_size, full.page_size, steps[0].pre, steps,
                 policy=full.policy, start=start)


def test_a_binder_trace_replays_from_an_arbitrary_state() -> None:
    trace = _binder_suffix(2)
    assert trace.initial.len > 0
    replayed = replay(load_text(trace.text(), "suffix"))
    assert replayed.reproduces and replayed.trace.start == "arbitrary"
    assert replayed.trace.initial == trace.initial and replayed.trace.text() == trace.text()


def test_a_binder_trace_from_an_arbitrary_state_is_checked(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"states/0/len: recorded \d+, but the start \(new\) has 0"):
        replay(load_text(_binder_suffix(2, start="new").text(), "suffix"))
    raw = json.loads(_binder_suffix(2).text())
    raw["states"][0]["elements"] = []  # len without identities
    refused(written(tmp_path, raw), "states/0: the start state breaks the type invariant 'one identity per element'")


def _scenario_trace() -> Trace:
    model = model_named("kvvec-v6/u8").with_faults(frozenset({"page-rule-off-by-one"}))
    trace = check(PROPS["scenario.no-page-freed-noop"], model, 4096, Solving(60_000)).counterexample
    assert trace is not None and trace.start == "setup" and trace.setup
    return trace


def test_a_scenario_trace_is_rebuilt_from_its_setup(tmp_path: Path) -> None:
    trace = _scenario_trace()
    replayed = replay(load_text(trace.text(), "scenario"))
    assert replayed.reproduces and replayed.trace.text() == trace.text()
    raw = json.loads(trace.text())
    raw["#meta"]["setup"][0]["additional"] = 99
    refused(written(tmp_path, raw), "#meta.setup: not the setup of scenario.no-page-freed-noop")
    raw = json.loads(trace.text())
    raw["states"][1]["action"]["min_capacity"] = big(1)
    refused(written(tmp_path, raw), r"states/1/action/min_capacity: scenario.no-page-freed-noop calls shrink_to\(0\)")
    raw = json.loads(trace.text())
    raw["states"][0]["capacity"] = raw["states"][0]["layout_len"] = big(50)
    refused(written(tmp_path, raw), r"states/0/capacity: recorded 50, but the start \(setup\) has 12288")


# --- every consumer -------------------------------------------------------------------------------


def test_every_command_refuses_with_one_line_and_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _meta_edit(WASTE_V4, {"model": "binder/v6"})
    path = written(tmp_path, raw)
    plot = tmp_path / "plot.png"
    for argv in (["replay"], ["show"], ["show", "--as-pytest"], ["show", "--as-kunit"], ["show", "--plot", str(plot)]):
        assert main([argv[0], str(path), *argv[1:]]) == 2
        captured = capsys.readouterr()
        why = "#meta.variant.policy: 'v4' is not the policy of binder/v6 ('v6')"
        assert captured.err == f"verify: error: {path}: {why}\n"
        assert captured.out == ""
    assert not plot.exists()
