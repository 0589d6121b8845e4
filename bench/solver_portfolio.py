"""Bare Z3 beside bare Bitwuzla on the queries `verify run all --dump-smt` writes, per query and per kind.

Run from the repository root with the project installed:
    python bench/solver_portfolio.py [DIR]
With DIR (a directory of dumped .smt2 queries) it times those; without, it first
dumps the queries of `verify run all --jobs 1`. Each solver runs every script
whole (every check-sat in it, as `z3 -smt2` would), in a worker process of its
own, and the CPU time of each script is its own. A query is of a kind by what
it holds: element arrays as `lambda` (which Bitwuzla's parser does not read),
quantifiers, several checks (a counterexample's minimisation), or none of
these. The table says, per kind, which solver decides it faster: the measured
rule a portfolio would follow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from verify.search.portfolio import BITWUZLA, first_solver

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 60_000
KINDS = ("lambda", "quantifier", "minimisation", "plain")

# One solver over many scripts, in its own process: file name -> (CPU seconds, answer or error).
WORKER = r"""
import json, sys, time
name, timeout_ms, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if name == "z3":
    import z3
    z3.set_param("timeout", timeout_ms)
    def run(text):
        ctx = z3.Context()
        return z3.Z3_eval_smtlib2_string(ctx.ref(), text).split()
else:
    import bitwuzla
    from verify.search.confirm import PRELUDE, bitwuzla_options
    def run(text):
        parser = bitwuzla.Parser(bitwuzla.TermManager(), bitwuzla_options(timeout_ms))
        parser.parse(PRELUDE + text, True, False)  # parse only: the assertions, then one check
        return [str(parser.bitwuzla().check_sat())]
for path in paths:
    text = open(path).read()
    start = time.process_time()
    try:
        said = run(text)
    except Exception as e:
        said = ["error: " + str(e).splitlines()[0][:80]]
    print(json.dumps([path, time.process_time() - start, said[-1] if said else ""]), flush=True)
"""


def kind(text: str) -> str:
    if "(lambda" in text:
        return "lambda"
    if "(forall" in text or "(exists" in text:
        return "quantifier"
    if "check-sat-assuming" in text:
        return "minimisation"
    return "plain"


def timed(solver: str, paths: list[Path]) -> dict[str, tuple[float, str]]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, solver, str(TIMEOUT_MS), *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    rows = (json.loads(line) for line in done.stdout.splitlines())
    return {path: (seconds, answer) for path, seconds, answer in rows}


# `verify run all --jobs 1 --dump-smt DIR` in this process, timing every solver call the dumped queries
# stand for: Bitwuzla's checks and its searches for a counterexample's least values, and Z3's checks
# made by verify.search.solver (single queries, models asked again, minimisations). The explorer's edge
# checks (verify.search.edges) are not dumped, so not counted.
RUN_TIMING_SOLVERS = r"""
import json, sys, time
import z3
from verify.search import confirm
spent = {"bitwuzla": 0.0, "z3": 0.0}
bitwuzla_check = confirm.SOLVERS["bitwuzla"]
def timed_bitwuzla(text, timeout_ms):
    start = time.process_time()
    try:
        return bitwuzla_check[0](text, timeout_ms)
    finally:
        spent["bitwuzla"] += time.process_time() - start
confirm.SOLVERS["bitwuzla"] = (timed_bitwuzla, bitwuzla_check[1])
from verify.search import least
search_least = least.least_values
def timed_least(*args):
    start = time.process_time()
    try:
        return search_least(*args)
    finally:
        spent["bitwuzla"] += time.process_time() - start
least.least_values = timed_least
z3_check = z3.Solver.check
def timed_z3(self, *assumptions):
    if not sys._getframe(1).f_code.co_filename.endswith("verify/search/solver.py"):
        return z3_check(self, *assumptions)
    start = time.process_time()
    try:
        return z3_check(self, *assumptions)
    finally:
        spent["z3"] += time.process_time() - start
z3.Solver.check = timed_z3
from verify.cli import main
try:
    main(["run", "all", "--jobs", "1", "--no-cache", "--dump-smt", sys.argv[1], "--counterexamples", sys.argv[2]])
except SystemExit:
    pass
print(json.dumps(spent))
"""


def dumped() -> tuple[Path, dict[str, float]]:
    """The queries of `verify run all --jobs 1`, dumped into a new directory, and the CPU seconds each solver
    spent on them in that run."""
    directory = Path(tempfile.mkdtemp(prefix="verify-bench-portfolio-"))
    traces = directory / "traces"
    done = subprocess.run(
        [sys.executable, "-c", RUN_TIMING_SOLVERS, str(directory), str(traces)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    spent: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return directory, spent


def measured(directory: Path | None = None) -> list[str]:
    """The table of bare Z3 beside bare Bitwuzla per kind, as Markdown lines."""
    source = "`verify run all --jobs 1 --dump-smt`" if directory is None else f"`{directory}`"
    spent: dict[str, float] | None = None
    if directory is None:
        directory, spent = dumped()
    paths = sorted(directory.glob("*.smt2"))
    kinds = {str(p): kind(p.read_text()) for p in paths}
    z3_times = timed("z3", paths)
    # Bitwuzla answers only the scripts of one check: a minimisation script's checks are Z3's to make.
    single = [p for p in paths if kinds[str(p)] != "minimisation"]
    bitwuzla_times = timed("bitwuzla", single)
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0, 0.0, 0])
    best_total = portfolio_total = sat_z3 = 0.0
    sat_count = 0
    for path, (z3_seconds, _) in z3_times.items():
        row = per_kind[kinds[path]]
        row[0] += 1
        row[1] += z3_seconds
        best = z3_seconds
        # The rule verify follows (verify.search.portfolio): Bitwuzla first on a single check without
        # quantifiers; Z3 after it when it could not decide, and on a SAT for the model (counted always).
        by_rule = z3_seconds
        if path in bitwuzla_times:
            seconds, answer = bitwuzla_times[path]
            if answer in ("sat", "unsat"):
                row[2] += 1
                row[3] += seconds
                row[4] += z3_seconds
                row[5] += seconds < z3_seconds
                best = min(best, seconds)
            if first_solver(Path(path).read_text()) == BITWUZLA:
                by_rule = seconds + (z3_seconds if answer != "unsat" else 0.0)
                if answer == "sat":
                    sat_count += 1
                    sat_z3 += z3_seconds
        best_total += best
        portfolio_total += by_rule
    z3_total = sum(s for s, _ in z3_times.values())
    lines = [
        f"- {len(paths)} queries of {source}; CPU seconds of each script, run whole;"
        f" {TIMEOUT_MS // 1000} s per script",
        "",
        "| kind | queries | bare z3 CPU s | decided by Bitwuzla | its CPU s | z3 CPU s on those | Bitwuzla faster |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in KINDS:
        n, z3_s, read, bw_s, z3_read, wins = per_kind[name]
        lines.append(f"| {name} | {n:.0f} | {z3_s:.2f} | {read:.0f} | {bw_s:.2f} | {z3_read:.2f} | {wins:.0f} |")
    lines += [
        "",
        f"- bare z3 in all: {z3_total:.2f} s CPU; the faster of the two on each query: {best_total:.2f} s"
        f" ({best_total / z3_total:.2f} of z3's)",
        f"- the rule per kind (Bitwuzla first on every single check, Z3 after it on SAT for the model,"
        f" Z3 on a script of several checks): {portfolio_total:.2f} s ({portfolio_total / z3_total:.2f} of z3's)"
        f" if Z3 is asked again on every one of the {sat_count} SAT answers ({sat_z3:.2f} s of it),"
        f" {portfolio_total - sat_z3:.2f} s ({(portfolio_total - sat_z3) / z3_total:.2f}) if on none:"
        " a premise's witness needs no model, and a minimised counterexample's model comes from its"
        " minimisation. The scripts of several checks are each a search for a counterexample's least values,"
        " which the run makes with Bitwuzla for a single call or a kernel test (verify/search/least.py) and"
        " with Z3 for a binder state; the next line times what the run really asked",
    ]
    if spent is not None:
        used = spent["bitwuzla"] + spent["z3"]
        met = "met" if used <= 0.6 * z3_total else "MISSED"
        lines += [
            f"- the run itself, timed solver call by solver call: Bitwuzla {spent['bitwuzla']:.2f} s, Z3"
            f" {spent['z3']:.2f} s (its minimisations, and the models it is asked again for), {used:.2f} s in all:"
            f" {used / z3_total:.2f} of bare z3's time on the same queries (target 0.6, {met})",
        ]
    return lines


def _timed(tree: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, its worker processes too) of `verify ARGS` run on `tree`'s code."""
    return _timed_python(tree, ["-m", "verify", *args])


# The checks of bench/target_checks.txt, cold, on all cores, through the runner `verify run` uses; fails
# unless every verdict is the declared one.
RUN_TARGET_CHECKS = r"""
import sys
from models.catalogue import model_named
from verify.check.runner import RunOptions, _properties, default_jobs, run_checks
properties = _properties(4096)
named = [line.split() for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
pairs = [(properties[p], model_named(m)) for p, m in named]
results = list(run_checks(pairs, RunOptions(4096, 60_000, jobs=default_jobs())))
assert all(r.as_expected for r in results), "a verdict not as declared"
"""


def _timed_python(tree: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, its worker processes too) of `python ARGS` run on `tree`'s code."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=tree, capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_and_warm(baseline: Path, warm_runs: int = 3) -> list[str]:
    """`verify run all` cold (an empty proof cache, which it fills) and warm, on `baseline`'s code (a tree of an
    earlier commit, e.g. `git archive REV | tar -x -C DIR`) and on this one, in turn; warm as the median."""
    work = Path(tempfile.mkdtemp(prefix="verify-bench-cold-warm-"))
    trees = {"baseline": baseline.resolve(), "this tree": ROOT}

    def run_all(name: str) -> tuple[float, float]:
        where = work / name.replace(" ", "-")
        return _timed(trees[name], ["run", "all", "--cache-dir", str(where / "cache"), "--counterexamples",
                                    str(where / "cex")])

    cold = {name: run_all(name) for name in trees}
    target_checks = str(ROOT / "bench" / "target_checks.txt")
    same = {name: _timed_python(trees[name], ["-c", RUN_TARGET_CHECKS, target_checks]) for name in trees}
    warm: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(warm_runs):
        for name in trees:
            warm[name].append(run_all(name))
    median = {name: sorted(runs)[warm_runs // 2] for name, runs in warm.items()}
    lines = [
        f"- `verify run all` on all cores, cold (an empty proof cache) and warm (the cache filled; median of"
        f" {warm_runs}), the baseline `{baseline}` and this tree in turn; CPU is user + system of the command"
        " and its workers",
        "",
        "| measure | baseline wall | baseline CPU | wall | CPU | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    measures = (
        ("cold", (cold["baseline"], cold["this tree"]), 10.0),
        ("cold, the 97 checks of 7668307 (bench/target_checks.txt)", (same["baseline"], same["this tree"]), 10.0),
        ("warm", (median["baseline"], median["this tree"]), 0.5),
    )
    for label, (b, t), target in measures:
        met = "met" if t[0] <= target else "MISSED"
        lines.append(f"| {label} | {b[0]:.2f} s | {b[1]:.2f} s | {t[0]:.2f} s | {t[1]:.2f} s | <= {target} s wall"
                     f" | {met} |")
    cpu = cold["this tree"][1]
    lines += [
        "",
        f"- cold: {cpu:.1f} s of CPU on 2 cores is at least {cpu / 2:.1f} s of wall time, however quiet the machine;"
        " warm: the command's imports (z3, numpy, lark, the models: about 0.3 s of CPU alone) and the replay of"
        " every cached counterexample on the Python model, which the cache's soundness requires",
    ]
    return lines


def main() -> None:
    print("\n".join(measured(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))


if __name__ == "__main__":
    main()
