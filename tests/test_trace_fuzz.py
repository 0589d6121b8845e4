"""Fuzzing the trace reader: 1,000 malformed or edited traces, no traceback, hang or false "reproduces".

The generator and the judge are bench/fuzz_traces.py (`python bench/fuzz_traces.py --count 10000`
runs the long version); here a fixed seed, every case loaded and replayed in process under a time
limit, a sample of them also through every command (the FIFO and /dev/zero in a subprocess).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
