"""Fuzzing the trace reader: 1,000 malformed or edited traces, no traceback, hang or false "reproduces".

The generator and the judge are bench/fuzz_traces.py (`python bench/fuzz_traces.py --count 10000`
runs the long version); here a fixed seed, every case loaded and replayed in process under a time
limit, a sample of them also through every command (the FIFO and /dev/zero in a subprocess).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from verify.traces import trace_input
from verify.traces.trace_input import TraceError, check_schema, parse_json

REPO = Path(__file__).resolve().parent.parent


def _fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_traces", REPO / "bench" / "fuzz_traces.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_traces"] = module
    spec.loader.exec_module(module)
    return module


def test_a_thousand_malformed_or_edited_traces(tmp_path: Path) -> None:
    fuzz = _fuzzer()
    tally, failures = fuzz.fuzz(seed=0, count=1000, cli=15, directory=tmp_path)
    assert failures == []
    assert sum(tally[k] for k in ("refused", "reproduces", "does-not-reproduce")) == 1000
    # The generator makes mostly broken traces, and a few faithful ones (an edit that changes nothing).
    assert tally["refused"] > 900 and tally["commands checked"] >= 15


def test_the_generator_covers_every_kind_of_damage() -> None:
    fuzz = _fuzzer()
    labels = [case.label for case in fuzz.cases(0, 1000)]
    for kind in ("fifo", "zero", "dir", "big", "missing", "binary", "truncated", "bytes flipped", "removed",
                 "retyped", "Infinity", "nested 100000 deep", "#meta model", "#meta policy", "#meta elem_size",
                 "#meta page_size", "#meta property", "#meta start", "swapped", "states from another trace"):
        assert any(kind in label for label in labels), kind
    assert any("-> " in label and label.startswith("states/") for label in labels)  # recorded values edited
    assert any("= 18446744073709551616" in label or "= 1000000000000000000000000000000" in label for label in labels)


def _reference_verdict(doc: Any) -> bool:
    return bool(trace_input._validator().is_valid(doc))


def test_the_compiled_schema_check_gives_the_reference_verdict() -> None:
    # trace_input takes "valid" from the compiled validator (jsonschema-rs) and leaves every refusal to the
    # reference one (jsonschema): on the committed traces and fuzzed edits of them, the two agree.
    fuzz = _fuzzer()
    docs = [parse_json(text, "committed") for text in fuzz.originals()]
    for case in fuzz.cases(seed=1, count=300):
        with contextlib.suppress(TraceError):
            docs.append(parse_json(case.text or "", case.label))
    verdicts = [(trace_input._schema_valid(doc), _reference_verdict(doc)) for doc in docs]
    assert [compiled for compiled, _ in verdicts] == [reference for _, reference in verdicts]
    assert sum(reference for _, reference in verdicts) > 40 and sum(not r for _, r in verdicts) > 40


def test_where_the_two_validators_differ_the_reference_decides() -> None:
    fuzz = _fuzzer()
    doc = parse_json(fuzz.originals()[0], "committed")
    # Python's `$` also matches before a final newline, Rust's does not: the reference validator accepts
    # this #bigint, so the trace is accepted as it always was (int() reads it as 5).
    doc["states"][1]["len"] = {"#bigint": "5\n"}
    assert not trace_input._schema_valid(doc) and _reference_verdict(doc)
    check_schema(doc, "t")
    # A key that is not UTF-8 the compiled validator cannot take at all; the reference one refuses it.
    doc["states"][1]["\ud800"] = 1
    assert not trace_input._schema_valid(doc) and not _reference_verdict(doc)
    with pytest.raises(TraceError, match="states/1: Additional properties are not allowed"):
        check_schema(doc, "t")
