"""verify source: the front end reads shrink_to, proves the v6 fixture conformant, finds each deviation."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from models.allocator import Fn, Kind
from models.machine import Platform
from models.vec import step
from verify.cli import main
from verify.source.conformance import check_shrink_to, shrink_to_function

DATA = Path(__file__).parent / "data" / "source"


def _line_of(path: Path, text: str, nth: int = 0) -> int:
    """The line holding `text`; with `nth`, its nth occurrence (from 1), else the only one."""
    numbers = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    if nth:
        return numbers[nth - 1]
    (number,) = numbers
    return number


def _lines_run(out: str) -> list[int]:
    match = re.search(r"source lines run: \S+?:([\d, ]+)", out)
    assert match, out
    return [int(n) for n in match.group(1).split(", ")]


def test_v6_fixture_in_a_kernel_tree_is_proved_conformant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kvec = tmp_path / "rust" / "kernel" / "alloc" / "kvec.rs"
    kvec.parent.mkdir(parents=True)
    shutil.copy(DATA / "kvec_v6.rs", kvec)
    assert main(["source", str(tmp_path)]) == 0
    note, shrink, reserve = capsys.readouterr().out.splitlines()
    assert note == f"binder not checked: no drivers/android/binder/context.rs in {tmp_path}"
    assert shrink.startswith(f"PROVED conformant  shrink_to ({kvec}:{_line_of(kvec, 'pub fn shrink_to(')})")
    assert reserve.startswith(f"PROVED conformant  reserve ({kvec}:{_line_of(kvec, 'pub fn reserve(')})")
    assert "{0, 1, 8, 24}" in shrink and "{0, 1, 8, 24}" in reserve


# Each deviation: the aspect the solver reports and a line of the deviation the replayed run goes through.
DEVIATIONS = [
    ("kvec_page_rule_lt.rs", "result", "if old_pages < new_pages {"),
    ("kvec_alloc_error_dropped.rs", "result", "Err(_) => return Ok(()),"),
    ("kvec_copy_target.rs", "allocator copied", "cast::<T>(), target) };"),
    ("kvec_layout_kept.rs", "post-state layout_len", "self.ptr = new_ptr.cast::<T>();"),
    ("kvec_target_doubled.rs", "wrap-around", "min_capacity) * 2;"),
]


@pytest.mark.parametrize(("name", "aspect", "line_text"), DEVIATIONS)
def test_each_deviation_is_found_with_the_source_line(
    name: str, aspect: str, line_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / name
    assert main(["source", "--kvec", str(path)]) == 1
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("VIOLATED  shrink_to") and aspect in first
    assert _line_of(path, line_text) in _lines_run(out)
    assert "replayed on the concrete source back end" in out


def test_a_deviating_reserve_is_found_and_shrink_to_still_proved(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "kvec_reserve_exact.rs"
    assert main(["source", "--kvec", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("PROVED conformant  shrink_to")
    violated = out[out.index("VIOLATED  reserve"):]
    assert "allocator calls" in violated.splitlines()[0] and "reserve(" in violated
    assert _line_of(path, "let new_cap = wanted;") in _lines_run(violated)


def test_a_difference_is_a_replayed_input_with_both_post_states() -> None:
    result = check_shrink_to(shrink_to_function(DATA / "kvec_copy_target.rs"))
    diff = result.difference
    assert diff is not None and result.proved == [0]  # a zero-sized T never copies
    plat = Platform(diff.elem_size, diff.page_size)
    assert diff.pre.invariant_violations(plat) == []
    # The model's side is the reference model's own step on that input.
    assert diff.model == step(plat, diff.pre, diff.action)
    assert diff.source.effects.copied is not None and diff.model.effects.copied is not None
    assert diff.source.effects.copied.nbytes > diff.model.effects.copied.nbytes == diff.pre.len * diff.elem_size


def test_v4_conforms_to_the_model_with_v4s_deep_copy() -> None:
    fn = shrink_to_function(DATA / "kvec_v4.rs")
    result = check_shrink_to(fn, frozenset({"kmalloc-deep-copy"}))
    assert result.difference is None and not result.unknown and result.proved == [0, 1, 8, 24]


def test_v4_differs_from_v6_on_the_kmalloc_path() -> None:
    diff = check_shrink_to(shrink_to_function(DATA / "kvec_v4.rs")).difference
    assert diff is not None and diff.pre.buf is not None
    assert diff.pre.buf.kind is Kind.KMALLOC
    assert diff.model.effects.calls[0].fn is Fn.REALLOC
    assert diff.source.effects.calls[0].fn is Fn.ALLOC


# Each unsupported construct: its name in the message, the text the reported column points at (and which
# occurrence of it, when it is not the only one).
UNSUPPORTED = [
    ("kvec_loop.rs", "while loop", "while target < self.len() {", 0),
    ("kvec_closure.rs", "closure", "|n: usize| (n", 0),
    ("kvec_unknown_call.rs", "call", "vmalloc_can_shrink_in_place(self.ptr.cast(), target)", 0),
    # Two frees on one path: a step records one free, so the second would be lost, not compared.
    ("kvec_double_free.rs", "second possible free on one path (a step records one)", "KVmalloc::free(", 2),
]


@pytest.mark.parametrize(("name", "construct", "at", "nth"), UNSUPPORTED)
def test_unsupported_constructs_are_unknown_with_file_line_column(
    name: str, construct: str, at: str, nth: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = DATA / name
    assert main(["source", "--kvec", str(path)]) == 2
    out = capsys.readouterr().out
    line = _line_of(path, at, nth)
    column = path.read_text().splitlines()[line - 1].index(at) + 1
    assert out.startswith(f"UNKNOWN  shrink_to: {path}:{line}:{column}: unsupported {construct}: `")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["source", "/nonexistent-tree"], "is not a directory"),
        (["source", "--kvec", "/nonexistent.rs"], "/nonexistent.rs: no such file"),
        (["source"], "one of the arguments"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_a_file_without_shrink_to_or_with_a_syntax_error_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_fn = tmp_path / "none.rs"
    no_fn.write_text("impl<T> Vec<T, KVmalloc> {\n    pub fn len(&self) -> usize {\n        self.len\n    }\n}\n")
    assert main(["source", "--kvec", str(no_fn)]) == 2
    assert "no `fn shrink_to` in an `impl Vec<T, KVmalloc>` block" in capsys.readouterr().err
    broken = tmp_path / "broken.rs"
    broken.write_text("impl<T> Vec<T, KVmalloc> {\n    pub fn shrink_to(&mut self {\n}\n")
    assert main(["source", "--kvec", str(broken)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.search(rf"{re.escape(str(broken))}:\d+:\d+: syntax error", err)


def test_a_fifo_a_device_or_a_file_not_in_utf8_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "kvec.rs"
    os.mkfifo(fifo)
    latin1 = tmp_path / "latin1.rs"
    latin1.write_bytes(b"// caf\xe9\nimpl<T> Vec<T, KVmalloc> {}\n")
    cases = [(fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"), (latin1, "not UTF-8 text")]
    for path, why in cases:
        assert main(["source", "--kvec", str(path)]) == 2  # a FIFO without a writer would block: it returns
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and why in err, err
