"""The proof cache and SMT-LIB dumps."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import z3

from models.catalogue import model_named
from properties.base import Verdict
from properties.registry import all_properties
from verify import workers
from verify.check import engine
from verify.check.cache import ROOT, ProofCache, source_files
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving
from verify.traces.trace import Trace, save

PATTERN = "binder.no-immediate-regrow"  # explorer and BMC checks, with traces


def test_the_key_covers_the_models_the_properties_and_the_checker() -> None:
    # When verify/cache.py moved to verify/check/, the digest read the directories under verify/ and found
    # no file: a changed model kept its cached verdicts.
    read = {path.relative_to(ROOT).as_posix() for path in source_files()}
    assert {"models/vec.py", "models/binder.py", "properties/registry.py", "verify/check/engine.py"} <= read
    assert all(name.endswith(".py") for name in read)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().out.splitlines()


def rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("PROVED", "VIOLATED", "UNKNOWN"))]


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """PATTERN run once into an empty cache: the filled cache and the run's lines (the tests copy the cache)."""
    work = tmp_path_factory.mktemp("cold")
    out = io.StringIO()  # the rows, read as capsys would (a module fixture cannot use capsys)
    with contextlib.redirect_stdout(out):
        code = main(["run", PATTERN, "--cache-dir", str(work / "c"), "--counterexamples", str(work / "t")])
    assert code == 0
    return work / "c", out.getvalue().splitlines()


def _copied(cold_run: tuple[Path, list[str]], tmp_path: Path) -> Path:
    cache = tmp_path / "c"
    shutil.copytree(cold_run[0], cache)
    return cache


def test_an_unchanged_rerun_is_answered_from_the_cache(
    cold_run: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cold = cold_run[1]
    assert not any("cached" in r for r in rows(cold))
    argv = ["run", PATTERN, "--cache-dir", str(_copied(cold_run, tmp_path)), "--counterexamples", str(tmp_path / "t")]
    code, warm = run(argv, capsys)
    assert code == 0 and len(rows(warm)) == len(rows(cold)) == 6  # v6, v4, naive; never does not shrink
    assert all("cached" in r for r in rows(warm))
    assert [r.split()[:3] for r in rows(warm)] == [r.split()[:3] for r in rows(cold)]
    # A cached counterexample is still reported with its trace (replayed again).
    assert sum("counterexample: PAGE_SIZE" in line for line in warm) == 4


def test_a_corrupt_entry_is_ignored_and_rebuilt(
    cold_run: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _copied(cold_run, tmp_path)
    argv = ["run", PATTERN, "--cache-dir", str(cache), "--counterexamples", str(tmp_path / "t")]
    entries = sorted(cache.rglob("*.json"))
    assert len(entries) == 6
    entries[0].write_text("{ truncated")
    entries[1].write_text('{"format": "verify-cache/1", "key": "someone else\'s"}')
    code, out = run(argv, capsys)
    assert code == 0 and sum("cached" in r for r in rows(out)) == 4  # two entries were corrupt: rebuilt
    code, out = run(argv, capsys)
    assert all("cached" in r for r in rows(out))


def test_no_cache_reads_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c"
    argv = ["run", "binder.keeps-others", "--no-cache", "--cache-dir", str(cache), "--counterexamples", str(tmp_path)]
    assert run(argv, capsys)[0] == 0
    assert not cache.exists()


def test_dump_smt_writes_every_query_as_smtlib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "smt"
    argv = ["run", "shrink.capacity-floor", "--dump-smt", str(dump), "--jobs", "1", "--counterexamples", str(tmp_path)]
    code, out = run(argv, capsys)
    assert code == 0 and len(rows(out)) == 11  # the 5 kvvec-v6 models and the 6 generic ones
    queries = sorted(dump.glob("*.smt2"))
    assert len(queries) == 22  # per model: the proof, and the witness that its premise happens
    answers = []
    for query in queries:
        solver = z3.Solver()
        solver.from_file(str(query))
        answers.append(solver.check())
    # The negated property (the proof) and the premise (the witness), re-run on the dumped text.
    assert answers.count(z3.unsat) == 11 and answers.count(z3.sat) == 11


# --- an entry is bound to its key and content ---------------------------------------------

U8 = model_named("kvvec-v6/u8")
PROPS = {p.id: p for p in all_properties(4096)}
GROWS, LOWERS, NEVER_GROWS = "shrink.physical-never-grows", "shrink.change-lowers-physical", "shrink.never-grows"


def _checked(cache: ProofCache, prop_id: str) -> engine.Result:
    return check(PROPS[prop_id], U8, 4096, Solving(60_000), proof_cache=cache)


def _entry_path(cache_dir: Path, prop_id: str) -> Path:
    """The entry file of a check, found by the property id in its content (the key is a hash)."""
    for path in cache_dir.rglob("*.json"):
        text = path.read_text()
        content = _content(json.loads(text))
        if content["trace"] is not None and f'"property": "{prop_id}"' in content["trace"]:
            return path
        if content["trace"] is None and prop_id == NEVER_GROWS:
            return path
    raise AssertionError(f"no entry for {prop_id}")


def _content(entry: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = entry.get("content", entry)
    return content


def _edit(path: Path, change: Any, redigest: bool = False) -> None:
    """Change an entry's content in place; `redigest` also recomputes its digest, as a careful forger would."""
    entry = json.loads(path.read_text())
    change(_content(entry))
    if redigest and "digest" in entry:
        from verify.check.cache import entry_digest

        entry["digest"] = entry_digest(entry["key"], entry["content"])
    path.write_text(json.dumps(entry))


@pytest.fixture(scope="module")
def filled_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache_dir = tmp_path_factory.mktemp("cache") / "c"
    cache = ProofCache(cache_dir)
    for prop_id in (GROWS, LOWERS, NEVER_GROWS):
        assert not _checked(cache, prop_id).cached
    return cache_dir


@pytest.fixture
def filled(filled_once: Path, tmp_path: Path) -> tuple[ProofCache, Path]:
    """A cache holding two violations and a proof of kvvec-v6/u8, each test its own copy."""
    cache_dir = tmp_path / "c"
    shutil.copytree(filled_once, cache_dir)
    return ProofCache(cache_dir), cache_dir


def test_a_swapped_trace_is_a_miss_and_rebuilt(filled: tuple[ProofCache, Path]) -> None:
    cache, cache_dir = filled
    grows, lowers = _entry_path(cache_dir, GROWS), _entry_path(cache_dir, LOWERS)
    theirs = _content(json.loads(lowers.read_text()))["trace"]
    _edit(grows, lambda c: c.update(trace=theirs))
    result = _checked(cache, GROWS)
    assert not result.cached and result.counterexample is not None
    assert result.counterexample.property_id == GROWS  # its own trace, not the other property's
    assert _checked(cache, GROWS).cached  # rebuilt


def test_a_swapped_trace_with_a_recomputed_digest_is_still_refused(filled: tuple[ProofCache, Path]) -> None:
    cache, cache_dir = filled
    grows, lowers = _entry_path(cache_dir, GROWS), _entry_path(cache_dir, LOWERS)
    theirs = _content(json.loads(lowers.read_text()))["trace"]
    _edit(grows, lambda c: c.update(trace=theirs), redigest=True)
    result = _checked(cache, GROWS)
    assert not result.cached and result.counterexample is not None
    assert result.counterexample.property_id == GROWS


def test_two_swapped_entries_do_not_flip_verdicts(filled: tuple[ProofCache, Path]) -> None:
    cache, cache_dir = filled
    grows, proved = _entry_path(cache_dir, GROWS), _entry_path(cache_dir, NEVER_GROWS)
    # The verdicts, details and traces change places; each file keeps its own key.
    fields = ("verdict", "seconds", "detail", "scope", "trace")
    ca = {k: _content(json.loads(grows.read_text()))[k] for k in fields}
    cb = {k: _content(json.loads(proved.read_text()))[k] for k in fields}
    _edit(grows, lambda c: c.update(cb))
    _edit(proved, lambda c: c.update(ca))
    assert _checked(cache, GROWS).verdict is Verdict.VIOLATED
    assert _checked(cache, NEVER_GROWS).verdict is Verdict.PROVED


def test_edited_content_under_an_intact_key_is_a_miss(filled: tuple[ProofCache, Path]) -> None:
    cache, cache_dir = filled
    grows = _entry_path(cache_dir, GROWS)
    _edit(grows, lambda c: c.update(verdict="PROVED", trace=None))
    result = _checked(cache, GROWS)
    assert result.verdict is Verdict.VIOLATED and not result.cached
    proved = _entry_path(cache_dir, NEVER_GROWS)
    _edit(proved, lambda c: c.update(detail="edited"))
    result = _checked(cache, NEVER_GROWS)
    assert result.verdict is Verdict.PROVED and not result.cached and result.detail == ""


def test_an_unknown_entry_is_never_served(filled: tuple[ProofCache, Path]) -> None:
    cache, cache_dir = filled
    proved = _entry_path(cache_dir, NEVER_GROWS)
    _edit(proved, lambda c: c.update(verdict="UNKNOWN", detail="timeout"), redigest=True)
    result = _checked(cache, NEVER_GROWS)
    assert result.verdict is Verdict.PROVED and not result.cached


def test_unknown_and_undecided_verdicts_are_never_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ProofCache(tmp_path / "c")
    real = engine._check

    def undecided(*args: Any, **kwargs: Any) -> engine.Result:
        return replace(real(*args, **kwargs), verdict=Verdict.UNKNOWN, detail="timeout")

    monkeypatch.setattr(engine, "_check", undecided)
    assert _checked(cache, NEVER_GROWS).verdict is Verdict.UNKNOWN
    assert not list((tmp_path / "c").rglob("*.json"))

    # A bounded proof whose induction step timed out is PROVED up to k steps, and not stored either.
    def bounded(*args: Any, **kwargs: Any) -> engine.Result:
        return replace(real(*args, **kwargs), undecided=True)

    monkeypatch.setattr(engine, "_check", bounded)
    assert _checked(cache, NEVER_GROWS).verdict is Verdict.PROVED
    assert not list((tmp_path / "c").rglob("*.json"))


def test_an_induction_step_out_of_time_makes_a_bounded_proof_that_is_not_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models.binder import policy_named
    from properties import binder
    from verify.search.solver import Answer, Solved

    monkeypatch.setattr(binder, "induction_step", lambda *a, **k: Solved(Answer.UNKNOWN, None, 0.0, "timeout"))
    prop = next(p for p in binder.PROPERTIES if p.id == "binder.waste-bound.bmc")
    found = prop.check(policy_named("v6"), 4096, Solving(60_000), 4)
    assert found.verdict is Verdict.PROVED and "up to 4 operations" in found.scope
    assert found.undecided and found.detail == "1-induction step not decided (timeout)"


@pytest.mark.parametrize("hostile", ["kvvec-v6/u8\nrow", "kvvec-v6/u8\0", "kvvec-v6/" + "u8" * 150])
def test_a_hostile_model_name_in_a_cached_trace_is_refused(
    filled: tuple[ProofCache, Path], tmp_path: Path, hostile: str
) -> None:
    cache, cache_dir = filled
    grows = _entry_path(cache_dir, GROWS)

    def rename(content: dict[str, Any]) -> None:
        trace = json.loads(content["trace"])
        trace["#meta"]["model"] = hostile
        content["trace"] = json.dumps(trace)

    _edit(grows, rename, redigest=True)
    result = _checked(cache, GROWS)
    assert not result.cached and result.counterexample is not None
    assert result.counterexample.model == "kvvec-v6/u8"
    path, _ = save(result.counterexample, tmp_path / "t")
    assert path.name.startswith(f"{GROWS}--kvvec-v6_u8--")


def test_file_names_are_safe_whatever_the_model_is_called(tmp_path: Path) -> None:
    result = _checked(ProofCache(tmp_path / "c"), GROWS)
    assert result.counterexample is not None
    for hostile in ["a/b\nc", "x\0y", "../../etc/passwd", "m" * 300, "kvvec-v6/u8!" + "+".join(["fault"] * 60)]:
        name = replace(result.counterexample, model=hostile).file_name()
        assert len(name.encode()) <= 200 and name.endswith(".itf.json")
        assert all(c.isalnum() or c in "._-" for c in name) and not name.startswith(".")


def test_a_trace_records_its_start() -> None:
    trace: Trace | None = check(PROPS[GROWS], U8, 4096, Solving(60_000)).counterexample
    assert trace is not None and trace.start == "arbitrary"
    assert json.loads(trace.text())["#meta"]["start"] == "arbitrary"


def test_a_run_answered_wholly_from_the_cache_starts_no_workers(
    cold_run: tuple[Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = _copied(cold_run, tmp_path)

    def no_pool(*args: Any) -> None:
        raise AssertionError("a worker pool was started for checks the cache answers")

    monkeypatch.setattr(workers, "pool", no_pool)
    argv = ["run", PATTERN, "--jobs", "2", "--cache-dir", str(cache), "--counterexamples", str(tmp_path / "t")]
    code, lines = run(argv, capsys)
    assert code == 0
    assert len(rows(lines)) == len(rows(cold_run[1])) and all("cached" in row for row in rows(lines))
