"""The command line: `verify run`, `mutants`, `list`, `show`, `replay`, `graph`.

Exit codes of `run`: 0 when every verdict matches its declared expectation; 1
when any does not; 2 for UNKNOWN, a usage error or an internal error.
`mutants`: 0 when every seeded fault is killed, 1 when one survives, 2 for a
usage error. `replay`: 0 when the trace's violation reproduces, 1 when it does not, 2 for a
malformed trace.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from models.binder import POLICIES, BinderStep, policy_named
from models.catalogue import MODELS, ModelSpec
from models.faults import FAULTS
from models.machine import PAGE_SIZES
from properties.base import Property
from properties.binder import BMC_DEPTH, SequenceProperty
from properties.registry import all_properties, applicable
from verify import __version__
from verify.confirm import version as confirm_version
from verify.engine import ReplayError, Result, Verdict
from verify.explorer import Instance, explore
from verify.mutants import ALL_FAULTS, killers, matrix, run_mutants, witnesses
from verify.mutants import summary as mutants_summary
from verify.replay import replay
from verify.report import row, summary
from verify.runner import default_jobs, run_checks
from verify.show import render_table, to_dot
from verify.solver import CONFIRM_ENV, DUMP_ENV
from verify.trace import TraceError, load, save

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that ends a usage error with one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"verify {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser("run", help="check properties on models", description="Check properties on models.")
    run.add_argument(
        "pattern",
        nargs="?",
        default="all",
        help="'all', or a glob or substring of property ids and model names (default: all)",
    )
    run.add_argument("--page-size", type=int, default=4096, help=f"PAGE_SIZE in bytes, one of {PAGE_SIZES}")
    run.add_argument("--timeout", type=float, default=60.0, help="seconds per solver query; beyond it: UNKNOWN")
    run.add_argument(
        "--counterexamples",
        type=Path,
        default=Path("counterexamples"),
        help="directory where counterexample traces are saved (default: counterexamples/)",
    )
    run.add_argument(
        "--bmc-depth", type=int, default=BMC_DEPTH, help=f"operations unrolled by BMC (default {BMC_DEPTH})"
    )
    run.add_argument(
        "--jobs", type=int, default=default_jobs(), help="checks solved in parallel (default: the number of cores)"
    )
    run.add_argument(
        "--cache-dir", type=Path, default=Path(".verify-cache"), help="where proofs are cached (default .verify-cache/)"
    )
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the proof cache")
    run.add_argument(
        "--confirm",
        action="store_true",
        help="re-check every UNSAT with cvc5 on the same SMT-LIB2 query; disagreement or doubt is UNKNOWN (exit 2)",
    )
    run.add_argument("--dump-smt", type=Path, metavar="DIR", help="also write every solver query as SMT-LIB2 into DIR")
    run.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="seed a fault into shrink_to (see `verify list`); repeatable",
    )

    mutants = commands.add_parser(
        "mutants",
        help="run every property on every seeded fault and print the kill matrix",
        description="Run every property on every seeded fault; exit 0 only if every mutant is killed.",
    )
    mutants.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault; repeatable")
    mutants.add_argument("--page-size", type=int, default=4096, help=f"PAGE_SIZE in bytes, one of {PAGE_SIZES}")
    mutants.add_argument("--timeout", type=float, default=60.0, help="seconds per solver query; beyond it: UNKNOWN")
    mutants.add_argument(
        "--jobs", type=int, default=default_jobs(), help="checks solved in parallel (default: the number of cores)"
    )

    commands.add_parser("list", help="list models, properties and seedable faults")

    show = commands.add_parser(
        "show", help="print a trace as a step table", description="Print a trace as a step table."
    )
    show.add_argument("trace", type=Path, help="an ITF trace file written by `verify run`")
    show.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw len, capacity and physical memory")
    generated = show.add_mutually_exclusive_group()
    generated.add_argument("--as-pytest", action="store_true", help="print a pytest test that replays the trace")
    generated.add_argument("--as-kunit", action="store_true", help="print a KUnit test case in Rust")

    replay = commands.add_parser(
        "replay",
        help="re-execute a trace on the Python model",
        description="Re-execute a trace on the Python model: exit 0 if the violation reproduces, 1 if not.",
    )
    replay.add_argument("trace", type=Path, help="an ITF trace file written by `verify run`")

    graph = commands.add_parser(
        "graph",
        help="write the explored binder state graph as DOT",
        description="Write the explored binder state graph as DOT, a trace's path highlighted in red.",
    )
    graph.add_argument("--policy", default="v6", help="binder shrink policy (default v6)")
    graph.add_argument("--page-size", type=int, default=64, help="the instance's PAGE_SIZE (default 64)")
    graph.add_argument("--max-capacity", type=int, default=40, help="the instance's capacity bound (default 40)")
    graph.add_argument("--trace", type=Path, help="a binder trace whose path is highlighted")
    graph.add_argument("--output", type=Path, help="write the DOT here instead of standard output")
    return parser


def selected(
    pattern: str, props: Sequence[Property | SequenceProperty], models: Sequence[ModelSpec]
) -> list[tuple[Property | SequenceProperty, ModelSpec]]:
    pairs = [(p, m) for p in props for m in models if applicable(p, m)]
    if pattern == "all":
        return pairs

    def matches(name: str) -> bool:
        return fnmatch.fnmatch(name, pattern) or pattern in name

    return [(p, m) for p, m in pairs if matches(p.id) or matches(m.name)]


def command_list(out: list[str]) -> int:
    out.append("models:")
    out += [f"  {m.name:<20} {m.description}" for m in MODELS]
    out.append("properties:")
    for p in all_properties(4096):
        expectation = "expected VIOLATED on sized T" if p.expect_violated(MODELS[1]) else "expected PROVED"
        out.append(f"  {p.id:<34} {p.statement} [{expectation}]")
    out.append("faults (for --fault):")
    out += [f"  {name:<28} {text}" for name, text in FAULTS.items()]
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    if args.page_size not in PAGE_SIZES:
        raise UsageError(f"--page-size must be one of {', '.join(map(str, PAGE_SIZES))}, not {args.page_size}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout}")
    if not 1 <= args.bmc_depth <= 64:
        raise UsageError(f"--bmc-depth must be in 1..64, not {args.bmc_depth}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    unknown = sorted(set(args.fault) - FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown fault {unknown[0]!r}; `verify list` shows the faults")
    models = [m.with_faults(frozenset(args.fault)) for m in MODELS] if args.fault else list(MODELS)
    pairs = selected(args.pattern, all_properties(args.page_size), models)
    if not pairs:
        raise UsageError(f"no property or model matches {args.pattern!r}; `verify list` shows them")

    start = time.perf_counter()
    results: list[Result] = []
    # A dump needs every query sent, so it bypasses the cache.
    cache_dir = None if args.no_cache or args.dump_smt else args.cache_dir
    if args.dump_smt is not None:
        args.dump_smt.mkdir(parents=True, exist_ok=True)
        os.environ[DUMP_ENV] = str(args.dump_smt.resolve())  # read by the solver, in every worker
    if args.confirm:
        os.environ[CONFIRM_ENV] = "cvc5"
    try:
        for result in run_checks(
            pairs, args.page_size, int(args.timeout * 1000), args.jobs, args.bmc_depth, cache_dir
        ):
            saved = None
            if result.counterexample is not None:
                saved, _ = save(result.counterexample, args.counterexamples)
            print(row(result, saved), flush=True)
            results.append(result)
    finally:
        os.environ.pop(DUMP_ENV, None)
        os.environ.pop(CONFIRM_ENV, None)
    print(summary(results, time.perf_counter() - start))
    if args.confirm:
        print(f"--confirm: every UNSAT answer was re-checked by {confirm_version()} on the same SMT-LIB2 query;"
              " a disagreement or an undecided re-check is UNKNOWN")
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        return EXIT_ERROR
    return EXIT_OK if all(r.as_expected for r in results) else EXIT_UNEXPECTED


def command_mutants(args: argparse.Namespace) -> int:
    if args.page_size not in PAGE_SIZES:
        raise UsageError(f"--page-size must be one of {', '.join(map(str, PAGE_SIZES))}, not {args.page_size}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    unknown = sorted(set(args.fault) - FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown fault {unknown[0]!r}; `verify list` shows the faults")
    faults = list(dict.fromkeys(args.fault)) or list(ALL_FAULTS)
    start = time.perf_counter()
    outcomes = list(run_mutants(faults, args.page_size, int(args.timeout * 1000), args.jobs))
    print(matrix(outcomes, faults))
    print(witnesses(outcomes, faults))
    print(mutants_summary(outcomes, faults, time.perf_counter() - start))
    return EXIT_OK if all(killers(outcomes, f) for f in faults) else EXIT_UNEXPECTED


def _new_file(path: Path) -> Path:
    """An output path that does not exist yet: a user's file is never overwritten."""
    if path.exists():
        raise UsageError(f"{path} exists; choose another name or remove it first")
    return path


def command_show(args: argparse.Namespace) -> int:
    loaded = load(args.trace)
    replayed = replay(loaded)
    if args.as_pytest:
        from verify.regression import as_pytest

        print(as_pytest(replayed.trace), end="")
    elif args.as_kunit:
        from verify.regression import as_kunit

        print(as_kunit(replayed.trace), end="")
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(render_table(loaded, replayed, color))
    if args.plot is not None:
        from verify.plot import plot

        plot(replayed.trace, _new_file(args.plot))
        print(f"plot: {args.plot}", file=sys.stderr)
    return EXIT_OK


def command_replay(args: argparse.Namespace) -> int:
    replayed = replay(load(args.trace))
    if replayed.reproduces:
        print(f"reproduces: {replayed.prop.id} fails at step {replayed.trace.failing_step} on the Python model")
        return EXIT_OK
    print(f"does not reproduce: {replayed.prop.id} holds on the Python model at every step of the trace")
    return EXIT_UNEXPECTED


def command_graph(args: argparse.Namespace) -> int:
    try:
        policy = policy_named(args.policy)
        instance = Instance(args.page_size, args.max_capacity)
        instance.platform  # noqa: B018  (validates the page size)
    except KeyError:
        raise UsageError(f"unknown policy {args.policy!r}; one of {', '.join(p.name for p in POLICIES)}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not 1 <= args.max_capacity <= 4096:
        raise UsageError(f"--max-capacity must be in 1..4096, not {args.max_capacity}")
    path: list[BinderStep] = []
    if args.trace is not None:
        traced = replay(load(args.trace))
        if traced.trace.policy != policy.name or traced.trace.page_size != args.page_size:
            raise UsageError(
                f"{args.trace} is a trace of policy {traced.trace.policy} with PAGE_SIZE {traced.trace.page_size};"
                f" pass --policy and --page-size to match"
            )
        path = [s for s in traced.trace.steps if isinstance(s, BinderStep)]
    dot = to_dot(explore(policy, instance), path)
    if args.output is None:
        print(dot, end="")
    else:
        _new_file(args.output).write_text(dot)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            lines: list[str] = []
            code = command_list(lines)
            print("\n".join(lines))
            return code
        if args.command == "show":
            return command_show(args)
        if args.command == "replay":
            return command_replay(args)
        if args.command == "graph":
            return command_graph(args)
        if args.command == "mutants":
            return command_mutants(args)
        return command_run(args)
    except (UsageError, TraceError) as e:
        print(f"verify: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ReplayError as e:
        print(f"verify: internal error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
