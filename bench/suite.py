"""The test suite's wall time: the full suite CI runs and the quick loop that leaves out the slow tests.

`python bench/run.py --suite` measures both, one after the other, with pytest-xdist sharing them among one
worker per core (README's command), and rewrites the "Test suite" section of bench/RESULTS.md alone.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Test suite"
# Issue 15: the quick loop under 3 minutes on 2 cores; the full suite well under CI's former 15 minutes.
TARGETS = {"full": 15 * 60.0, "quick": 3 * 60.0}
RUNS = {  # the quick loop first: it is the one a developer waits for
    "quick": ('the quick loop, `-m "not slow"`', ["-m", "not slow"]),
    "full": ("the full suite, as CI runs it", []),
}
# The full suite on main before its modules were grouped again and its slow tests marked (commit 7739086),
# the same command on the same machine: both xdist workers computed the kill matrix.
BEFORE = "15.5 min (1223 tests)"
# The quick loop on main before the tests sped up in the suite branch (commit 1338b1c), the same command on
# the same machine, shared as now: /usr/bin/time's wall and user+system time of pytest and its workers.
QUICK_BEFORE = (
    "the quick loop took 24.8 min wall, 11.5 min CPU (1196 passed, 2 failed: the Ctrl-C tests of"
    " tests/test_workers.py, whose runs inherited an ignored SIGINT), load average 7.7 before and 14.7 after"
)


def timed_pytest(extra: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of pytest and its workers, and the summary line of one suite run."""
    argv = [sys.executable, "-m", "pytest", "-n", str(os.cpu_count() or 1), "-q", "-p", "no:cacheprovider", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr}")
    summary = done.stdout.strip().splitlines()[-1]
    counted = re.search(r"(\d+) passed.*?(?: in |$)", summary)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, counted.group(0).removesuffix(" in ") if counted else summary


Load = tuple[float, float, float]


def section(measured: dict[str, tuple[float, float, str]], loads: dict[str, tuple[Load, Load]]) -> list[str]:
    """The section, with a row for each run measured so far (a run not reached says so)."""
    lines = [
        SECTION,
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, one xdist worker"
        f" each; load average (1, 5, 15 min), " + "; ".join(
            f"{name} run {' '.join(f'{x:.1f}' for x in before)} before, {' '.join(f'{x:.1f}' for x in after)} after"
            for name, (before, after) in loads.items()
        ) + " (the machine is shared: CPU time is the steadier figure)",
        f"- before: the full suite took {BEFORE} with the same command; {QUICK_BEFORE}",
        "",
        "| run | tests | wall | CPU (all processes) | target | |",
        "|---|---|---|---|---|---|",
    ]
    for name, (label, _) in RUNS.items():
        target = f"<= {TARGETS[name] / 60:.0f} min"
        if name not in measured:
            missing = "not recorded: the measurement stopped first (a failing run is not timed)"
            lines.append(f"| {label} | | {missing} | | {target} | |")
            continue
        wall, cpu, counted = measured[name]
        met = "met" if wall <= TARGETS[name] else "MISSED"
        lines.append(f"| {label} | {counted} | {wall / 60:.1f} min | {cpu / 60:.1f} min | {target} | {met} |")
    return [*lines, ""]


def write_section(results: Path) -> None:
    """Measure each run and, after each, put the section in RESULTS.md in place of the old one."""
    measured: dict[str, tuple[float, float, str]] = {}
    loads: dict[str, tuple[Load, Load]] = {}
    for name, (_, extra) in RUNS.items():
        before = os.getloadavg()
        measured[name] = timed_pytest(extra)
        loads[name] = (before, os.getloadavg())
        replace_section(results, section(measured, loads))


def replace_section(results: Path, lines: list[str]) -> None:
    """The section in place of the old one, or before "Kernel source" if there is none yet."""
    text = results.read_text()
    new = "\n".join(lines)
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        tail = rest[rest.index("\n## ") + 1 :] if "\n## " in rest else ""
        text = head + new + ("\n" + tail if tail else "")
    elif "\n## Kernel source" in text:
        head, tail = text.split("\n## Kernel source", 1)
        text = head.rstrip("\n") + "\n\n" + new + "\n## Kernel source" + tail
    else:
        text = text.rstrip("\n") + "\n\n" + new
    results.write_text(text)
    print(new)
