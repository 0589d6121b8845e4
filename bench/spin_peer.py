"""The explorer beside spin on the same binder instance (bench/binder.pml), in one run.

    python bench/spin_peer.py [BOUND ...]       (default: 40 128 512 1024 4096)

For each capacity bound it runs spin (`spin -a`, `cc`, `./pan`: wall and CPU
time compile included, peak memory, states stored) and the packed explorer in
a process of its own (wall and CPU time of the exploration and of every
explicit-state property of binder v6 on the graph, peak memory), and prints
both and their ratio. The explorer's inner loop is compiled by numba and kept
in numba's on-disk cache; the largest bound is run once more with an empty
cache, so that the compile is counted as spin's C compile is.
`python bench/run.py --spin` writes the same table into bench/RESULTS.md.
Without spin or a C compiler the spin columns say so.

The properties are those `verify run` checks on the explorer's instance
(properties/binder.py: no-immediate-regrow and its premise, waste-bound,
reclaim, no-thrash with its worst-case table), each violation's trace
replayed on the Python model and judged again. What is not run at these
bounds is the gate's per-edge check of the graph against the Python model and
the Z3 encoding (verify.search.edges): tests/test_packed.py holds the packed
explorer to the reference explorer edge for edge at bounds 16, 40 and 128.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMELA = ROOT / "bench" / "binder.pml"
BOUNDS = (40, 128, 512, 1024, 4096)


@dataclass(frozen=True)
class Measured:
    states: int
    seconds: float  # wall, everything included
    peak_mib: float
    detail: str = ""
    cpu_seconds: float = 0.0  # user + system of the processes run, everything included


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spin_available() -> str | None:
    """Why spin cannot run here, or None."""
    for tool in ("spin", "cc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def run_spin(bound: int) -> Measured:
    """spin -a, cc and pan on bench/binder.pml at `bound`: wall seconds of the three, pan's peak memory."""
    with tempfile.TemporaryDirectory(prefix="verify-spin-") as tmp:
        work = Path(tmp)
        shutil.copy(PROMELA, work / "binder.pml")
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(["spin", "-a", f"-DBOUND={bound}", "binder.pml"], cwd=work, check=True, capture_output=True)
        subprocess.run(
            ["cc", "-O2", "-DSAFETY", "-DNOREDUCE", "-o", "pan", "pan.c"], cwd=work, check=True, capture_output=True
        )
        # Depth-first: the stack must hold the longest path (-m); -w24 starts the hash table at 2^24 slots.
        with open(work / "pan.out", "w+b") as out:
            pan = subprocess.Popen(["./pan", "-m10000000", "-w24"], cwd=work, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(pan.pid, 0)  # pan's own peak memory, not the largest child's so far
            pan.returncode = os.waitstatus_to_exitcode(status)
            seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
            out.seek(0)
            text = out.read().decode()
        peak = usage.ru_maxrss / 1024
    stored = [line for line in text.splitlines() if "states, stored" in line]
    if pan.returncode != 0 or not stored or "errors: 0" not in text:
        raise SystemExit(f"pan did not finish cleanly at bound {bound}:\n{text[-2000:]}")
    return Measured(int(stored[0].split()[0]), seconds, peak, cpu_seconds=cpu)


def run_explorer(bound: int, cold: bool = False) -> tuple[Measured, float, float, int]:
    """The explorer and the properties in a fresh process: (measured, wall and CPU seconds of the exploration
    alone, edges).

    The measured wall time is the process's from its start (Python's imports included) to the last verdict.
    `cold`: with numba's cache empty (a directory of its own), so that the inner loop is compiled first.
    """
    with tempfile.TemporaryDirectory(prefix="verify-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache} if cold else None
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(
            [sys.executable, __file__, "--inside", str(bound)], capture_output=True, text=True, check=True, env=env
        )
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    out = json.loads(done.stdout)
    measured = Measured(out["states"], seconds, out["peak_mib"], out["detail"], cpu)
    return measured, out["explore"], out["explore_cpu"], out["edges"]


def _inside(bound: int) -> None:
    """Run in the measured process: explore binder v6 at `bound`, check every explicit-state property."""
    from models.binder import policy_named
    from properties.base import Verdict
    from properties.binder import (
        explored_finding,
        reclaim,
        regrow,
        replay,
        shrank_then_registers,
        thrash,
        thrash_finding,
        waste,
        waste_finding,
    )
    from verify.search.explorer import Instance
    from verify.search.packed import explore_packed

    policy = policy_named("v6")
    cpu = time.process_time()
    graph = explore_packed(policy, Instance(64, bound))
    explore_cpu = time.process_time() - cpu
    findings = {
        "no-immediate-regrow": (explored_finding(graph, regrow, pairs=True), regrow),
        "premise": (explored_finding(graph, shrank_then_registers, pairs=True), shrank_then_registers),
        "waste-bound": (waste_finding(graph), waste),
        "reclaim": (explored_finding(graph, reclaim, pairs=False), reclaim),
        "no-thrash": (thrash_finding(graph), thrash),
    }
    plat = graph.instance.platform
    verdicts = []
    for name, (found, judge) in findings.items():
        if found.verdict is Verdict.VIOLATED:
            # As the engine does: a trace is reported only once it replays and its judge agrees.
            steps = replay(plat, policy, found.actions)
            assert judge(plat, steps, found.mark or 0), f"{name}: the trace does not replay as a violation"
            verdicts.append(f"{name} VIOLATED in {len(found.actions)}")
        else:
            verdicts.append(f"{name} {found.verdict.value}")
    table = findings["no-thrash"][0].detail.rsplit(": ", 1)[-1]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    detail = "; ".join(verdicts) + f"; worst case k=1..16: {table}"
    print(json.dumps({"states": graph.states, "edges": graph.edges, "explore": graph.seconds,
                      "explore_cpu": explore_cpu, "peak_mib": peak, "detail": detail}))


@dataclass(frozen=True)
class Row:
    bound: int
    ours: Measured  # the explorer and every explicit-state property, in a process of its own
    explore_seconds: float  # the exploration alone
    explore_cpu: float  # its CPU time (the explorer runs on one core)
    edges: int
    spin: Measured | None  # None: spin cannot run here
    cold: bool = False  # numba's cache empty: the compile included

    @property
    def states_per_second(self) -> float:
        return self.ours.states / self.explore_seconds

    @property
    def states_per_cpu_second(self) -> float:
        return self.ours.states / self.explore_cpu

    @property
    def ratio(self) -> float | None:
        return None if self.spin is None else self.ours.seconds / self.spin.seconds

    @property
    def cpu_ratio(self) -> float | None:
        """The same in CPU time: less moved by other work on the machine than wall time."""
        return None if self.spin is None else self.ours.cpu_seconds / self.spin.cpu_seconds


def measure(bounds: tuple[int, ...] = BOUNDS) -> list[Row]:
    """Each bound: the explorer, then spin; their state counts must agree. The last bound again, with the
    explorer's compiled code not cached (the last row)."""
    missing = spin_available()
    rows: list[Row] = []
    for bound, cold in [*((b, False) for b in bounds), (bounds[-1], True)]:
        ours, explore_seconds, explore_cpu, edges = run_explorer(bound, cold)
        spin = None if missing else run_spin(bound)
        if spin is not None and spin.states != ours.states:
            raise SystemExit(f"bound {bound}: the explorer stores {ours.states} states, spin {spin.states}")
        if cold and ours.detail != rows[-1].ours.detail:
            raise SystemExit(f"bound {bound}: compiled afresh, the explorer answers otherwise: {ours.detail}")
        rows.append(Row(bound, ours, explore_seconds, explore_cpu, edges, spin, cold))
    return rows


def table(rows: list[Row]) -> list[str]:
    """Markdown: one row per bound, then what the properties found at each."""
    missing = spin_available()
    lines = [
        "| capacity bound | states | edges | exploration s (CPU s) | states/s (per CPU s)"
        " | explorer s, all properties (CPU s) | explorer MiB | spin states | spin s, compile included (CPU s)"
        " | spin MiB | explorer/spin time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        theirs = (
            f"{r.spin.states} | {r.spin.seconds:.2f} ({r.spin.cpu_seconds:.2f}) | {r.spin.peak_mib:.0f} |"
            f" {r.ratio:.2f}"
            if r.spin is not None
            else f"({missing}) | | |"
        )
        bound = f"{r.bound}, numba's cache empty" if r.cold else f"{r.bound}"
        lines.append(
            f"| {bound} | {r.ours.states} | {r.edges} | {r.explore_seconds:.2f} ({r.explore_cpu:.2f}) |"
            f" {r.states_per_second:.0f} ({r.states_per_cpu_second:.0f}) |"
            f" {r.ours.seconds:.2f} ({r.ours.cpu_seconds:.2f}) | {r.ours.peak_mib:.0f} | {theirs} |"
        )
    return [*lines, "", *(f"- capacity {r.bound}: {r.ours.detail}" for r in rows if not r.cold)]


def main() -> None:
    if sys.argv[1:2] == ["--inside"]:
        _inside(int(sys.argv[2]))
        return
    bounds = tuple(int(b) for b in sys.argv[1:]) or BOUNDS
    print("\n".join(table(measure(bounds))))


if __name__ == "__main__":
    main()
