"""verify source --diff: two versions proved equivalent, or each kind of changed behaviour with a replayed input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from models.allocator import Fn, Kind
from models.machine import Platform
from verify.cli import main
from verify.source import concrete
from verify.source.conformance import SHRINK_TO
from verify.source.diff import diff
from verify.source.locate import find_method

DATA = Path(__file__).parent / "data" / "source"


def test_v4_to_v6_lists_the_kmalloc_path_change(capsys: pytest.CaptureFixture[str]) -> None:
    old, new = DATA / "kvec_v4.rs", DATA / "kvec_v6.rs"
    assert main(["source", "--diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("CHANGED  shrink_to (OLD ")
    # A kmalloc buffer: v4 deep-copies (alloc, copy, free), v6 hands it to realloc.
    kind = "a kmalloc buffer of capacity 4097, shrink_to(1), kmalloc ok, vmalloc ok: OLD alloc + free, NEW realloc"
    assert kind in out
    assert "PROVED equivalent  reserve" in out.splitlines()[-1]


def test_each_change_is_a_replayed_input_on_a_kmalloc_buffer() -> None:
    old = find_method(DATA / "kvec_v4.rs", SHRINK_TO.impl, SHRINK_TO.name)
    new = find_method(DATA / "kvec_v6.rs", SHRINK_TO.impl, SHRINK_TO.name)
    result = diff(SHRINK_TO, old, new)
    assert result.changes and not result.unknown
    kinds = {(c.old_lines, c.new_lines) for c in result.changes}
    assert len(kinds) == len(result.changes)  # one input per kind
    for change in result.changes:
        plat = Platform(change.elem_size, change.page_size)
        assert change.pre.buf is not None and change.pre.buf.kind is Kind.KMALLOC  # v4 and v6 agree on vmalloc
        assert change.old == concrete.transition(old, plat, change.pre, change.action)[0]
        assert change.new == concrete.transition(new, plat, change.pre, change.action)[0]
        assert change.differing()
        assert [c.fn for c in change.new.effects.calls] == [Fn.REALLOC]


def test_a_version_is_equivalent_to_itself_in_two_trees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trees = []
    for name in ("old", "new"):
        files = (("rust/kernel/alloc/kvec.rs", "kvec_v6.rs"), ("drivers/android/binder/context.rs", "binder_v6.rs"))
        for path, fixture in files:
            (tmp_path / name / path).parent.mkdir(parents=True)
            shutil.copy(DATA / fixture, tmp_path / name / path)
        trees.append(str(tmp_path / name))
    assert main(["source", "--diff", *trees]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    names = ("shrink_to", "reserve", "register_process", "deregister_process")
    assert rows == [["PROVED", "equivalent", name] for name in names]


def test_binder_v4_to_v6_lists_the_policy_target_change(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "--diff", str(DATA / "binder_v4.rs"), str(DATA / "binder_v6.rs")]) == 1
    register, deregister, *kinds = capsys.readouterr().out.splitlines()
    assert register.startswith("PROVED equivalent  register_process")
    assert deregister.startswith("CHANGED  deregister_process") and deregister.endswith("1 kind of behaviour differs")
    # The trigger is the same: both shrink, to different targets (v4 cap/2, v6 len*2).
    assert re.search(r"OLD shrink_to\((\d+)\), NEW shrink_to\((\d+)\)$", kinds[0]) and "shrink_to target" in kinds[1]


def test_a_kvec_file_and_a_context_file_are_not_compared(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "--diff", str(DATA / "kvec_v6.rs"), str(DATA / "binder_v6.rs")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "are not the same kind of file" in err


def test_a_diff_of_a_tree_and_a_missing_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["source", "--diff", str(DATA / "kvec_v6.rs"), str(tmp_path / "none.rs")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "none.rs: no such file" in err


def test_an_unsupported_construct_in_either_version_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "--diff", str(DATA / "kvec_v6.rs"), str(DATA / "kvec_loop.rs")]) == 2
    assert "UNKNOWN  shrink_to: " in capsys.readouterr().out
