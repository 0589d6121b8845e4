"""The command line: `verify list`, `verify run PATTERN`.

Exit codes: 0 when every verdict matches its declared expectation; 1 when any
does not; 2 for UNKNOWN, a usage error or an internal error.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from models.catalogue import MODELS, ModelSpec
from models.faults import FAULTS
from models.machine import PAGE_SIZES
from properties.base import Property
from properties.binder import BMC_DEPTH, SequenceProperty
from properties.registry import all_properties, applicable
from verify import __version__
from verify.counterexample import TraceError, save
from verify.engine import ReplayError, Result, Verdict
from verify.report import row, summary
from verify.runner import default_jobs, run_checks

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
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="seed a fault into shrink_to (see `verify list`); repeatable",
    )

    commands.add_parser("list", help="list models, properties and seedable faults")
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
    for result in run_checks(pairs, args.page_size, int(args.timeout * 1000), args.jobs, args.bmc_depth):
        saved = None
        if result.counterexample is not None:
            saved, _ = save(result.counterexample, args.counterexamples)
        print(row(result, saved), flush=True)
        results.append(result)
    print(summary(results, time.perf_counter() - start))
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        return EXIT_ERROR
    return EXIT_OK if all(r.as_expected for r in results) else EXIT_UNEXPECTED


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            lines: list[str] = []
            code = command_list(lines)
            print("\n".join(lines))
            return code
        return command_run(args)
    except UsageError as e:
        print(f"verify: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (ReplayError, TraceError) as e:
        print(f"verify: internal error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
