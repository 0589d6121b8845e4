"""`verify policies`: the family, the metrics, the front, the `--best` constraint and the command line.

The sweeps here are tiny (a policy or two, `--prove none` where the Z3 properties add nothing to what is
tested): the verdicts are the engine's, which the other test modules test.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.binder import Policy, policy_named
from models.catalogue import model_named
from properties.base import Verdict
from properties.binder import (
    INSTANCE,
    PROPERTIES,
    _exploration,
    bmc_then_induction,
    explored_finding,
    regrow,
    replay,
    room_under,
    shrinks_to_room,
    thrash_metrics,
    waste,
)
from verify.check import constraint
from verify.check.all_sizes import regrow_cell, waste_cell
from verify.check.executors import LocalExecutor
from verify.check.policy_family import TARGETS, Family, parse_numbers, slug
from verify.check.policy_metrics import Metrics, measure, regrow_window
from verify.check.runner import RunOptions
from verify.check.sweep import Cell, PolicyRow, dominates, front
from verify.cli import main
from verify.report.sweep_progress import ShownExecutor
from verify.search.packed_graph import PackedGraph
from verify.search.solver import Solving

REPO = Path(__file__).resolve().parent.parent


# --- the family -----------------------------------------------------------------------


def test_the_family_is_every_trigger_with_every_target_and_built_in_rules_keep_their_names() -> None:
    family = Family(divisors=(2, 4), floors=(16,), targets=("len", "len*2", "cap/2"))
    rules = dict(family.rules())
    assert len(rules) == 2 * 2 * 2 * 3  # (<, <=) x d x (no floor, cap > 16) x targets
    assert rules["v6"] == "len < cap/4 => len*2"
    assert rules["v4"] == "len < cap/4 => cap/2"
    assert rules["naive"] == "len < cap/2 => len"
    assert rules["le4m16-lenx2"] == "len <= cap/4 && cap > 16 => len*2"
    assert len(Family().rules()) == 30 * len(TARGETS)


def test_names_are_made_from_the_target() -> None:
    assert slug("max(len*2, 8)") == "maxlenx2-8"
    assert slug("len*2 + 4") == "lenx2p4"
    assert slug("cap/2") == "capd2"


def test_number_lists_take_ranges_and_refuse_words() -> None:
    assert parse_numbers("2-4,8", "--divisors") == (2, 3, 4, 8)
    assert parse_numbers("", "--floors") == ()
    with pytest.raises(ValueError, match="--divisors 'two'"):
        parse_numbers("two", "--divisors")


# --- the metrics agree with the explorer's properties -----------------------------------


@pytest.mark.parametrize("name", ["v6", "v4", "naive", "never"])
def test_metrics_agree_with_the_explicit_state_properties(name: str) -> None:
    ex = _exploration(policy_named(name), INSTANCE)
    m = measure(ex)
    assert thrash_metrics(ex).endswith(" ".join(map(str, m.reallocs)))
    waste_proved = explored_finding(ex, waste, pairs=False).verdict is Verdict.PROVED
    assert (m.waste <= 4) == waste_proved
    if name != "never":
        regrow_proved = explored_finding(ex, regrow, pairs=True).verdict is Verdict.PROVED
        assert (m.regrow_window is not None and m.regrow_window >= 2) == regrow_proved


def test_the_metrics_of_the_series_policies() -> None:
    # README "The policies compared": the worst-case tables; the waste and regrow numbers follow from them.
    v6, v4, never = (measure(_exploration(policy_named(n), INSTANCE)) for n in ("v6", "v4", "never"))
    assert v6.reallocs == (1, 2, 3, 4, 4, 5, 5, 6, 7, 8, 8, 9, 9, 10, 11, 12)
    assert (v6.waste, v6.regrow_window) == (4, 1)  # capacity 4 -> 0 when the last process leaves
    assert (v4.waste, v4.regrow_window) == (17, 3)  # one halving after skipped shrinks: capacity 16 for 0
    assert never.regrow_window is None  # it never shrinks


# --- the front and --best ---------------------------------------------------------------


def _row(name: str, waste_factor: int, reallocs16: int, cells: dict[str, str] | None = None) -> PolicyRow:
    metrics = Metrics(waste_factor, (1,) * 15 + (reallocs16,), 2, 3, 10, 20)
    made = {p: Cell(p, v, "", "", 0.0, False) for p, v in (cells or {}).items()}
    return PolicyRow(name, "true => cap", "family", metrics, made, tuple(p.id for p in PROPERTIES))


def test_the_front_keeps_only_undominated_points() -> None:
    a, b, c, d = _row("a", 2, 13), _row("b", 4, 12), _row("c", 4, 14), _row("d", 4, 12)
    assert dominates(b, c) and not dominates(b, d) and not dominates(a, b)
    assert [r.name for r in front([a, b, c, d])] == ["a", "b", "d"]


def test_a_constraint_reads_metrics_and_verdicts_in_three_values() -> None:
    c = constraint.parse("waste <= 4 && no-regrow")
    assert c.flags == {"binder.no-immediate-regrow", "binder.no-immediate-regrow.bmc"}
    proved = {"binder.no-immediate-regrow": "PROVED", "binder.no-immediate-regrow.bmc": "PROVED"}
    assert c(_row("x", 4, 9, proved)) is True
    assert c(_row("x", 5, 9, proved)) is False
    assert c(_row("x", 4, 9, {"binder.no-immediate-regrow": "PROVED"})) is None  # the .bmc verdict not known yet
    assert c(_row("x", 4, 9, {"binder.no-immediate-regrow": "VIOLATED"})) is False
    assert constraint.parse("!(reallocs16 > 8) || regrow-window >= 3")(_row("x", 9, 8)) is True


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("waste <= ", 10, "ends early"),
        ("waste <= 4 && no-regorw", 15, "no property 'no-regorw'"),
        ("wastes < 3", 1, "no metric 'wastes'"),
        ("waste", 1, "a metric is compared with a number"),
        ("waste <= 4 & no-regrow", 12, "unexpected '&'"),
    ],
)
def test_a_bad_constraint_names_its_column(text: str, column: int, words: str) -> None:
    with pytest.raises(constraint.ConstraintError) as e:
        constraint.parse(text)
    assert e.value.column == column
    assert words in str(e.value)


def test_best_decides_the_least_value_first_and_returns_only_satisfying_policies() -> None:
    rows = [_row("cheap", 4, 6), _row("also-cheap", 9, 6), _row("dear", 4, 9)]
    asked: list[list[str]] = []

    def decide(some: list[PolicyRow]) -> list[PolicyRow]:
        asked.append([r.name for r in some])
        verdict = {"cheap": "VIOLATED", "dear": "PROVED"}
        return [replace(r, cells={"binder.no-thrash": Cell("binder.no-thrash", verdict[r.name], "", "", 0, False)})
                for r in some]

    found = constraint.best(rows, constraint.parse("waste <= 4 && no-thrash"), "reallocs16", decide)
    assert [r.name for r in found] == ["dear"]
    assert asked == [["cheap"], ["dear"]]  # also-cheap's waste rules it out without running anything


# --- the sweep through the engine, and the command line --------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_writes_csv_json_and_the_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    common = ["policies", "--divisors", "8", "--target", "cap/2", "--prove", "none", "--cache-dir", str(tmp_path)]
    code, out, _ = run([*common, "--format", "csv", "--plot", str(tmp_path / "front.png")], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("policy,rule,origin,front,waste,reallocs1,")
    assert [line.split(",")[0] for line in lines[1:]] == ["v6", "v4", "naive", "never", "lt8-capd2", "le8-capd2"]
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run([*common, "--format", "json"], capsys)
    document = json.loads(out)
    assert document["format"] == "verify-policies/1"
    assert "exact on the explored instance (PAGE_SIZE 64 B, capacity <= 40" in document["metrics_scope"]
    v6 = next(p for p in document["policies"] if p["name"] == "v6")
    assert v6["metrics"]["reallocs"][-1] == 12 and v6["metrics"]["waste"] == 4
    assert v6["verdicts"]["binder.waste-bound"]["verdict"] == "PROVED"
    assert v6["verdicts"]["binder.waste-bound.bmc"] is None  # --prove none
    assert "v6" in document["front"] and "v4" not in document["front"]  # lt8-capd2 dominates v4


def test_the_policy_read_from_source_is_one_more_row(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = REPO / "tests" / "data" / "source" / "binder_v6.rs"
    argv = ["policies", "--no-family", "--prove", "none", "--max-capacity", "20", "--no-cache", "--format", "csv"]
    code, out, _ = run([*argv, "--source", str(source)], capsys)
    assert code == 0
    header, *lines = out.splitlines()
    rows = {line.split(",")[0]: dict(zip(header.split(","), line.split(","), strict=True)) for line in lines}
    assert rows["source"]["rule"] == f"read from {source}"
    # A source's arithmetic is `verify source`'s check, not a policy-language rule's.
    assert rows["source"].pop("binder.policy-arithmetic") == "n/a"
    # v6's context.rs: the same metrics and verdicts as v6's model.
    same = [k for k in rows["source"] if k not in ("policy", "rule", "origin")]
    assert [rows["source"][k] for k in same] == [rows["v6"][k] for k in same]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--best", "waste <= 4 &&"], "--best 'waste <= 4 &&': column 14: the constraint ends early"),
        (["--best", "waste < 4", "--minimise", "speed"], "argument --minimise: invalid choice: 'speed'"),
        (["--target", "len*"], "--target 'len*': column 5: the policy ends early"),
        (["--divisors", "0"], "a divisor is at least 1"),
        (["--policy", "len < => 2"], "--policy 'len < => 2': column 7"),
        (["--executor", "dask"], "--executor dask needs --address"),
        (["--address", "tcp://127.0.0.1:1"], "--address is for --executor dask"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    code, out, err = run(["policies", "--no-cache", *argv], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("verify: error: ") and words in err


def test_an_existing_output_is_never_overwritten(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kept = tmp_path / "table.csv"
    kept.write_text("mine\n")
    code, _, err = run(["policies", "--no-cache", "--output", str(kept)], capsys)
    assert code == 2 and "exists" in err
    assert kept.read_text() == "mine\n"


def test_the_waste_factor_for_all_sizes_is_proved_least_with_a_replayed_trace_below_it() -> None:
    # naive shrinks to fit: capacity < 2 * (len + 1) for every sequence (1-induction at 4 KiB pages), and the
    # shortest trace breaking c = 1 registers one process and deregisters it (0 < 1/2 is false: capacity 1 stays
    # with no process). The instance says 2 as well.
    found = waste_cell(model_named("binder/naive"), 2, RunOptions(page_size=4096, timeout_ms=60_000, bmc_depth=4))
    assert (found.page_size, found.bound, found.refuted, found.text()) == (4096, 2, 1, "2")
    assert found.detail == "c = 1: violated in 2 operations"  # the shortest trace: register, deregister


def _least_room_plus_one(ex: PackedGraph) -> int | None:
    """The least free room a shrinking deregistration leaves on the explored instance, plus one."""
    shrinking = ~ex.is_register() & ex.shrank()
    dst = ex.dst[shrinking]
    return None if not len(dst) else int((ex.layout[dst] - ex.len[dst]).min()) + 1


@pytest.mark.parametrize("rule", ["len < cap/4 => len*2", "len < cap/4 => cap/2", "len < cap/2 => len",
                                  "len < cap/5 => len + 4", "len <= cap/3 => len*3", "len < cap/8 => max(len*2, 8)"])
def test_the_regrow_window_is_the_least_room_a_shrink_leaves_plus_one(rule: str) -> None:
    # What the search for all sizes stands on: a registration reallocates exactly when the list is full.
    ex = _exploration(Policy.define("p", rule), INSTANCE)
    assert regrow_window(ex) == _least_room_plus_one(ex) is not None


@pytest.mark.slow
@pytest.mark.parametrize(("name", "page_size", "window", "operations"), [
    ("v6", 4096, 1, 6), ("naive", 4096, 1, 4), ("v4", 4096, 3, 6),
    # With the explored instance's 64-byte pages, the instance's windows (1, 1, 3) for all sizes too.
    ("v6", 64, 1, None), ("naive", 64, 1, None), ("v4", 64, 3, None),
])
def test_the_regrow_window_for_all_sizes_is_proved_least_with_a_replayed_trace(
        name: str, page_size: int, window: int, operations: int | None) -> None:
    model = model_named(f"binder/{name}")
    instance_window = measure(_exploration(model.binder_policy(), INSTANCE)).regrow_window
    found = regrow_cell(model, instance_window, RunOptions(page_size=page_size, timeout_ms=60_000, bmc_depth=8))
    assert (found.page_size, found.least, found.exact, found.text()) == (page_size, window, True, str(window))
    if window > 1:
        assert f"every shrink leaves >= {window - 1} free slots by z3 1-induction" in found.detail
    if operations is not None:
        # The witness is the shortest trace from KVVec::new(), its length the least BMC depth with a violation:
        # the same in any process, whatever ran before (naive: register 2, deregister 2, the last shrink to 0).
        assert found.detail.endswith(f"a shrink leaves {window - 1} free slots in {operations} operations")


def test_a_lower_room_is_violated_and_replays_on_the_python_model() -> None:
    # v4 at 4 KiB: register 3, deregister 3 halves capacity 4 to 2 with no process: 2 free slots, so room 3
    # is violated by that trace and room 2 holds for every sequence.
    model = model_named("binder/v4")
    policy, plat = model.binder_policy(), model.machine(model.size_min, 4096)
    found = bmc_then_induction(policy, plat, Solving(60_000), 8, room_under(3))
    assert found.verdict is Verdict.VIOLATED
    steps = replay(plat, policy, found.actions)
    assert shrinks_to_room(plat, steps, 3) and not shrinks_to_room(plat, steps, 2)
    assert (steps[-1].post.len, steps[-1].post.capacity(plat)) == (0, 2)


def _square(n: int) -> int:
    return n * n


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_progress_bar_counts_every_call_and_keeps_the_results_in_order(jobs: int) -> None:
    stream = io.StringIO()
    shown = ShownExecutor(LocalExecutor(jobs), stream)
    counted: list[None] = []
    try:
        assert shown.map(_square, [(n,) for n in range(7)], lambda: counted.append(None)) == [n * n for n in range(7)]
        assert len(counted) == 7
        assert [t.completed for t in shown.progress.tasks] == []  # each phase's bar leaves when it is done
    finally:
        shown.close()


def test_no_progress_bar_off_a_terminal_and_none_under_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["policies", "--no-cache", "--no-family", "--prove", "none"], capsys)
    assert code == 0 and err.count("\n") == 1 and err.startswith("4 policies, ")
    code, quiet_out, err = run(["policies", "--no-cache", "--no-family", "--prove", "none", "--quiet"], capsys)
    assert (code, quiet_out, err) == (0, out, "")
