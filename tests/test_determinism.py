"""The same run twice gives byte-identical traces and the same report, but for the times.

Each check starts a fresh Z3 context with a fixed random seed, counterexamples
are the lexicographic least models, and rows come in a fixed order whatever
the number of worker processes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Single-call findings (minimised), a binder BMC finding and explorer findings, proofs among them.
PATTERN = "shrink.change-lowers-physical"
BINDER = "binder.no-immediate-regrow*"
# A time and the padding before it (a right-aligned column widens with the number).
SECONDS = re.compile(r"\s+\d+\.\d+s\b")


def run(tmp: Path, name: str, pattern: str, jobs: str) -> tuple[str, dict[str, bytes]]:
    traces = tmp / name
    argv = ["run", pattern, "--no-cache", "--jobs", jobs, "--counterexamples", str(traces)]
    done = subprocess.run(
        [sys.executable, "-m", "verify", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CI": "true"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = SECONDS.sub(" <t>", done.stdout.replace(str(traces), "<traces>"))
    return report, {p.name: p.read_bytes() for p in sorted(traces.iterdir())}


# One test per pattern: two units of work that xdist's two workers can share, not one long one.
@pytest.mark.parametrize("pattern", [PATTERN, BINDER])
def test_same_run_same_traces_and_report(tmp_path: Path, pattern: str) -> None:
    first_report, first_traces = run(tmp_path, "a", pattern, "2")
    second_report, second_traces = run(tmp_path, "b", pattern, "1")
    assert first_traces and first_traces == second_traces
    assert first_report == second_report
