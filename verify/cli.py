# PYTHON_ARGCOMPLETE_OK
"""The command line: `verify run`, `mutants`, `list`, `show`, `replay`, `graph`.

Exit codes of `run`: 0 when every verdict matches its declared expectation; 1
when any does not (a new violation, or a declared violation that now proves);
2 for UNKNOWN, a timeout, a usage error or an internal error.
`mutants`: 0 when every seeded fault is killed, 1 when one survives, 2 for a
usage error. `replay`: 0 when the trace's violation reproduces, 1 when it does not, 2 for a
malformed trace. Every command: 2 for an internal error (one line; never 1, which is a
finding), 130 after Ctrl-C, 143 after SIGTERM, 141 when standard output was closed early.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import os
import signal
import sys
import time
import traceback
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

from models.binder import BinderStep
from models.catalogue import MODELS, ModelSpec, chosen_policies, policy_model
from models.faults import FAULTS
from models.machine import PAGE_SIZE_PRESETS, PAGE_SIZES, PRESETS
from properties.base import Property
from properties.binder import BMC_DEPTH, EXPLORER_PAGE_SIZES, INSTANCE, SequenceProperty
from properties.registry import all_properties, applicable
from verify import __version__
from verify.check.engine import ReplayError
from verify.check.mutants import ALL_FAULTS, killers, matrix, run_mutants, witnesses
from verify.check.mutants import summary as mutants_summary
from verify.check.runner import RunOptions, default_jobs, run_checks
from verify.config import ConfigError, Settings
from verify.config import load as load_config
from verify.interrupts import solvers_interruptible
from verify.report.display import NORMAL, QUIET, VERBOSE, Display, interactive
from verify.report.gate import EXIT_ERROR, EXIT_OK, EXIT_UNEXPECTED, Checked, exit_code
from verify.report.output import OutputExists, check_new, usable_directory, write_new
from verify.report.sources import describe as describe_sources
from verify.report.sources import kernel_sources
from verify.report.text import row, summary
from verify.search.confirm import DEFAULT as DEFAULT_SECOND_SOLVER
from verify.search.confirm import SOLVERS as SECOND_SOLVERS
from verify.search.confirm import version as confirm_version
from verify.search.explorer import MAX_CAPACITY, Instance, explore
from verify.search.solver import seconds_to_ms, timeout_problem
from verify.source import command as source_command
from verify.source import steps as source_steps
from verify.source.locate import SourceError
from verify.traces.replay import replay
from verify.traces.show import render_table, to_dot
from verify.traces.trace import TraceError, load, save
from verify.workers import WORKERS_PER_CORE

FORMATS = ("text", "json", "junit", "sarif")
# Beyond the gate's 0, 1 and 2, the shell's conventions for a run that did not finish: 128 + the signal.
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: the reader of standard output went away
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM
TRACEBACK_ENV = "VERIFY_TRACEBACK"  # set (to anything) to see the traceback of an internal error
RUN_EPILOG = """exit codes: 0 every verdict as declared; 1 some verdict not as declared (a new
violation, or a declared violation that now proves); 2 UNKNOWN, a timeout, a usage
error or an internal error (the traceback with --verbose or VERIFY_TRACEBACK=1);
130 Ctrl-C; 143 SIGTERM; 141 standard output closed early.

Defaults come from [tool.verify] in ./pyproject.toml (see --config); a flag overrides them."""


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that ends a usage error with one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _check_names(**_: object) -> list[str]:
    """What `verify run <TAB>` offers: property ids and model names."""
    return ["all", *sorted({p.id for p in all_properties(4096)}), *(m.name for m in MODELS)]


def build_parser() -> Parser:
    parser = Parser(prog="verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"verify {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = commands.add_parser(
        "run",
        help="check properties on models",
        description="Check properties on models; one row per (property, model), then a summary.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pattern = run.add_argument(
        "pattern",
        nargs="?",
        default="all",
        help="'all', or a glob or substring of property ids and model names (default: all)",
    )
    pattern.completer = _check_names  # type: ignore[attr-defined]  # read by argcomplete
    # Defaults of None are filled from [tool.verify], then from config.Settings.
    run.add_argument(
        "--page-size",
        type=int,
        help=f"PAGE_SIZE in bytes, one of {PAGE_SIZES} (default 4096): shorthand for the platform"
        f" {', '.join(f'{k} -> {v}' for k, v in PAGE_SIZE_PRESETS.items())}",
    )
    run.add_argument(
        "--platform", choices=list(PRESETS), metavar="NAME", help="a platform preset (`verify list`); default x86_64"
    )
    run.add_argument(
        "--timeout", type=float, help="seconds per solver query, 0.001 to 86400; beyond it: UNKNOWN (default 60)"
    )
    run.add_argument(
        "--counterexamples",
        type=Path,
        help="directory where counterexample traces are saved (default: counterexamples/)",
    )
    run.add_argument("--bmc-depth", type=int, help=f"operations unrolled by BMC (default {BMC_DEPTH})")
    run.add_argument(
        "--max-capacity",
        type=int,
        help=f"the explicit-state properties' capacity bound (default {INSTANCE.max_capacity})",
    )
    run.add_argument(
        "--explorer-page-size",
        type=int,
        help=f"the explicit-state properties' PAGE_SIZE (default {INSTANCE.page_size})",
    )
    run.add_argument(
        "--jobs",
        type=int,
        help="checks solved in parallel (default: the number of cores; at most one worker per check and"
        f" {WORKERS_PER_CORE} per core)",
    )
    run.add_argument("--cache-dir", type=Path, help="where proofs are cached (default .verify-cache/)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the proof cache")
    run.add_argument(
        "--confirm",
        action=argparse.BooleanOptionalAction,
        help="re-check every UNSAT with a second solver on the same SMT-LIB2 query; disagreement or doubt is"
        " UNKNOWN (exit 2)",
    )
    run.add_argument(
        "--second-solver",
        choices=tuple(SECOND_SOLVERS),
        help=f"the solver --confirm re-checks with (default {DEFAULT_SECOND_SOLVER})",
    )
    run.add_argument("--dump-smt", type=Path, metavar="DIR", help="also write every solver query as SMT-LIB2 into DIR")
    run.add_argument(
        "--source",
        type=Path,
        metavar="PATH",
        help="check the kernel's own functions instead of the models: shrink_to and reserve of PATH's kvec.rs "
        "(models kvvec-src/T), binder's operations of its context.rs (binder-src); PATH a kernel tree or one file",
    )
    fault = run.add_argument(
        "--fault",
        action="append",
        metavar="NAME",
        help="seed a fault into shrink_to (see `verify list`); repeatable",
    )
    fault.completer = lambda **_: sorted(FAULTS)  # type: ignore[attr-defined]
    run.add_argument(
        "--policy",
        action="append",
        metavar="POLICY",
        help="check these binder policies only: a built-in or [tool.verify.policies] name, or a rule"
        " 'TRIGGER => TARGET' over len and cap (README, \"Policies as data\"); repeatable",
    )
    run.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="report format: text rows, JSON (schema verify-results/1), JUnit XML or SARIF 2.1.0 (default text)",
    )
    run.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE, a new file (an existing one is never overwritten); rows still show",
    )
    run.add_argument(
        "--config",
        type=Path,
        help="the pyproject.toml whose [tool.verify] gives the defaults (default ./pyproject.toml, if there is one)",
    )
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="show only checks not as declared, and the summary"
    )
    loudness.add_argument("-v", "--verbose", action="store_true", help="also show each property's statement")

    mutants = commands.add_parser(
        "mutants",
        help="run every property on every seeded fault and print the kill matrix",
        description="Run every property on every seeded fault; exit 0 only if every mutant is killed.",
    )
    mutants_fault = mutants.add_argument(
        "--fault", action="append", default=[], metavar="NAME", help="only this fault; repeatable"
    )
    mutants_fault.completer = lambda **_: sorted(FAULTS)  # type: ignore[attr-defined]
    mutants.add_argument("--page-size", type=int, default=4096, help=f"PAGE_SIZE in bytes, one of {PAGE_SIZES}")
    mutants.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per solver query, 0.001 to 86400; beyond it: UNKNOWN"
    )
    mutants.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help=f"checks solved in parallel (default: the number of cores; at most {WORKERS_PER_CORE} per core)",
    )

    cross = commands.add_parser(
        "crosscheck",
        help="drive the Python models through random programs, checking every step against Z3",
        description="Run the stateful cross-check: exit 0 if the two encodings agree on every step, 1 if not.",
    )
    cross.add_argument("--examples", type=int, default=100, help="random programs per machine (default 100)")
    cross.add_argument("--steps", type=int, default=50, help="at most this many steps per program (default 50)")
    cross.add_argument("--seed", type=int, help="a random seed (default: derandomized, the same programs every run)")

    commands.add_parser(
        "list",
        help="list models, properties, platforms and seedable faults",
        description="List the models, the properties with their declared expectations, and the seedable faults.",
    )

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
    graph.add_argument(
        "--policy", default="v6", help="binder shrink policy: a built-in name or a rule 'TRIGGER => TARGET' (v6)"
    )
    graph.add_argument("--page-size", type=int, default=64, help="the instance's PAGE_SIZE (default 64)")
    graph.add_argument("--max-capacity", type=int, default=40, help="the instance's capacity bound (default 40)")
    graph.add_argument("--trace", type=Path, help="a binder trace whose path is highlighted")
    graph.add_argument("--output", type=Path, help="write the DOT here instead of standard output")
    _add_policies_parser(commands)
    source = commands.add_parser(
        "source",
        help="prove the kernel's own shrink_to, reserve and binder policy conformant to the model",
        description="Read shrink_to and reserve (PATH/rust/kernel/alloc/kvec.rs) and binder's process registration "
        "and deregistration (PATH/drivers/android/binder/context.rs) from a kernel tree or a file and "
        "prove they make the model's transitions: exit 0 PROVED conformant, 1 VIOLATED (a replayed difference), "
        "2 UNKNOWN (an unsupported construct) or a usage error.",
    )
    where = source.add_mutually_exclusive_group(required=True)
    where.add_argument("path", nargs="?", type=Path, help="a kernel tree")
    where.add_argument("--kvec", type=Path, metavar="FILE", help="a kvec.rs file instead of a tree")
    where.add_argument("--binder", type=Path, metavar="FILE", help="a binder context.rs file instead of a tree")
    where.add_argument("--diff", nargs=2, type=Path, metavar=("OLD", "NEW"),
                       help="compare shrink_to and reserve of two kvec.rs files or two kernel trees")
    return parser


def _add_policies_parser(commands: argparse._SubParsersAction[Parser]) -> None:
    from verify.check.constraint import METRICS
    from verify.check.executors import EXECUTORS
    from verify.check.policy_family import DIVISORS, TARGETS
    from verify.check.sweep import PROVE

    sweep = commands.add_parser(
        "policies",
        help="sweep a family of binder shrink policies: every property's verdict, the metrics, the Pareto front",
        description="Check every binder property and measure every metric for each policy of a family (README,"
        " \"Comparing policies\"): exit 0 when every verdict needed is decided, 1 when --best finds no policy,"
        " 2 for an UNKNOWN, a usage error or an internal error.",
    )
    sweep.add_argument("--policy", action="append", default=[], metavar="POLICY",
                       help="one more policy: a built-in or [tool.verify.policies] name, or a rule; repeatable")
    sweep.add_argument("--source", type=Path, metavar="PATH",
                       help="one more policy: the one in PATH's drivers/android/binder/context.rs (a tree or the file)")
    sweep.add_argument("--divisors", default=f"{DIVISORS[0]}-{DIVISORS[-1]}", metavar="LIST",
                       help="the family's d of `len < cap/d` and `len <= cap/d`, e.g. 2-16 or 2,4,8 (default 2-16)")
    sweep.add_argument("--floors", default="", metavar="LIST",
                       help="also every trigger with `&& cap > m` for each m listed, e.g. 16,64 (default none)")
    sweep.add_argument("--target", action="append", metavar="EXPR",
                       help=f"the family's targets, repeatable (default: {', '.join(TARGETS)})")
    sweep.add_argument("--no-family", action="store_true",
                       help="only the built-in, configured, --policy and --source policies")
    sweep.add_argument("--prove", choices=PROVE, default="front",
                       help="run the Z3 properties on the front, the built-in and the named policies (front, the"
                       " default), on every policy (all), or on none (only the explored instance's verdicts)")
    sweep.add_argument("--all-sizes", action="store_true",
                       help="also the waste factor and the regrow window for every sequence and all 64-bit sizes with"
                       " --page-size's pages (BMC, then k-induction), for the built-in, configured and --policy"
                       " policies")
    sweep.add_argument("--best", metavar="CONSTRAINT",
                       help="the policies satisfying CONSTRAINT (e.g. 'waste <= 4 && no-regrow') with the least"
                       " --minimise metric, each with every property run")
    sweep.add_argument("--minimise", choices=tuple(METRICS), default="reallocs16", metavar="METRIC",
                       help="the metric --best minimises (default reallocs16; waste, regrow-window, reclaim-factor,"
                       " reallocsK)")
    sweep.add_argument("--format", choices=("text", "json", "csv"), default="text", help="the table's format")
    sweep.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar (shown on a terminal's stderr otherwise) and no closing count")
    sweep.add_argument("--output", type=Path, metavar="FILE", help="write the table to FILE, a new file")
    sweep.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the Pareto plot into FILE.png, a new file")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="where cells run: the local process pool (default) or a Dask cluster (--address)")
    sweep.add_argument("--address", metavar="ADDR", help="the Dask scheduler, e.g. tcp://127.0.0.1:8786")
    sweep.add_argument("--page-size", type=int, help="PAGE_SIZE of the Z3 properties (default 4096)")
    sweep.add_argument("--timeout", type=float, help="seconds per solver query (default 60)")
    sweep.add_argument("--bmc-depth", type=int, help=f"operations unrolled by BMC (default {BMC_DEPTH})")
    sweep.add_argument(
        "--max-capacity", type=int, help=f"the explored capacity bound (default {INSTANCE.max_capacity})",
    )
    sweep.add_argument("--explorer-page-size", type=int, help=f"the explored PAGE_SIZE (default {INSTANCE.page_size})")
    sweep.add_argument("--jobs", type=int, help="local worker processes (default: the number of cores)")
    sweep.add_argument("--cache-dir", type=Path, help="where proofs are cached (default .verify-cache/)")
    sweep.add_argument("--no-cache", action="store_true", help="neither read nor write the proof cache")
    sweep.add_argument("--config", type=Path, help="the pyproject.toml to read (default ./pyproject.toml)")
    sweep.set_defaults(platform=None, fault=None, counterexamples=None, confirm=None, second_solver=None)


def selected(
    pattern: str, props: Sequence[Property | SequenceProperty], models: Sequence[ModelSpec]
) -> list[tuple[Property | SequenceProperty, ModelSpec]]:
    pairs = [(p, m) for p in props for m in models if applicable(p, m)]
    if pattern == "all":
        return pairs

    def matches(name: str) -> bool:
        return fnmatch.fnmatch(name, pattern) or pattern in name

    return [(p, m) for p, m in pairs if matches(p.id) or matches(m.name)]


def _expectation(prop: Property | SequenceProperty) -> str:
    """The declared verdicts of a property over the models it applies to."""
    models = [m for m in MODELS if applicable(prop, m)]
    violated = [m.name for m in models if prop.expect_violated(m)]
    # Declarations that depend on the platform: the presets on which a sized model is declared VIOLATED.
    sized = next((m for m in models if m.policy is None and m.may_be_sized() and m.name not in violated), None)
    on = [p for p in PRESETS if sized is not None and prop.expect_violated(sized.with_platform(p))]
    if not violated and on:
        return f"expected VIOLATED on sized T with --platform {', '.join(on)}, else PROVED"
    if not violated:
        return "expected PROVED"
    if len(violated) == len(models):
        return "expected VIOLATED"
    also = f" (and on the others with --platform {', '.join(on)})" if on else ""
    return f"expected VIOLATED on {', '.join(violated)}{also}, else PROVED"


def command_list(out: list[str]) -> int:
    out.append("models:")
    out += [f"  {m.name:<20} {m.description}" for m in MODELS]
    out.append("properties:")
    for p in all_properties(4096):
        out.append(f"  {p.id:<34} {p.statement} [{_expectation(p)}]")
    out.append("platforms (for --platform):")
    out += [f"  {p.name:<20} {p.summary}" for p in PRESETS.values()]
    out.append("faults (for --fault):")
    out += [f"  {name:<28} {text}" for name, text in FAULTS.items()]
    return EXIT_OK


def _settings(args: argparse.Namespace) -> Settings:
    """[tool.verify] of --config, each value replaced by its flag when one is given."""
    # ./pyproject.toml is optional; a file named by --config must be there.
    base = load_config(args.config or Path("pyproject.toml"), required=args.config is not None)
    platform = base.platform if args.platform is None else args.platform
    page_size = base.page_size if args.page_size is None else args.page_size
    if platform is not None:
        preset = PRESETS[platform]
        # A page size given beside a platform must be the platform's own.
        if (args.page_size is not None or base.page_size != Settings.page_size) and page_size != preset.page_size:
            raise UsageError(
                f"--page-size {page_size} contradicts --platform {platform} ({preset.page_size}-byte pages)"
            )
        page_size = preset.page_size
    elif page_size != Settings.page_size and page_size in PAGE_SIZE_PRESETS:
        platform = PAGE_SIZE_PRESETS[page_size]  # the shorthand: 16 and 64 KiB pages are arm64's
    return Settings(
        page_size=page_size,
        platform=platform,
        timeout=base.timeout if args.timeout is None else args.timeout,
        bmc_depth=base.bmc_depth if args.bmc_depth is None else args.bmc_depth,
        max_capacity=base.max_capacity if args.max_capacity is None else args.max_capacity,
        explorer_page_size=base.explorer_page_size if args.explorer_page_size is None else args.explorer_page_size,
        jobs=base.jobs if args.jobs is None else args.jobs,
        models=base.models,
        faults=base.faults if args.fault is None else tuple(args.fault),
        counterexamples=base.counterexamples if args.counterexamples is None else str(args.counterexamples),
        cache_dir=base.cache_dir if args.cache_dir is None else str(args.cache_dir),
        confirm=base.confirm if args.confirm is None else args.confirm,
        second_solver=base.second_solver if args.second_solver is None else args.second_solver,
        source=base.source,
        policies=base.policies,
    )


def _check_solving_flags(page_size: int, timeout: float, jobs: int, faults: Sequence[str]) -> None:
    """The values `run` and `mutants` share, each a one-line usage error when out of range."""
    if page_size not in PAGE_SIZES:
        raise UsageError(f"--page-size must be one of {', '.join(map(str, PAGE_SIZES))}, not {page_size}")
    problem = timeout_problem(timeout)
    if problem is not None:
        raise UsageError(f"--timeout {problem}, not {timeout}")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    unknown = sorted(set(faults) - FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown fault {unknown[0]!r}; `verify list` shows the faults")


def _checked_settings(settings: Settings) -> Settings:
    """The settings `run` and `policies` share, each a one-line usage error when out of range; jobs filled in."""
    jobs = default_jobs() if settings.jobs is None else settings.jobs
    _check_solving_flags(settings.page_size, settings.timeout, jobs, settings.faults)
    if not 1 <= settings.bmc_depth <= 64:
        raise UsageError(f"--bmc-depth must be in 1..64, not {settings.bmc_depth}")
    if not 1 <= settings.max_capacity <= MAX_CAPACITY:
        raise UsageError(f"--max-capacity must be in 1..{MAX_CAPACITY}, not {settings.max_capacity}")
    if settings.explorer_page_size not in EXPLORER_PAGE_SIZES:
        sizes = ", ".join(map(str, EXPLORER_PAGE_SIZES))
        raise UsageError(f"--explorer-page-size must be one of {sizes}, not {settings.explorer_page_size}")
    return dataclasses.replace(settings, jobs=jobs)


def command_run(args: argparse.Namespace) -> int:
    settings = _checked_settings(_settings(args))
    jobs = settings.jobs
    assert jobs is not None
    explorer = Instance(settings.explorer_page_size, settings.max_capacity)
    defined = tuple(policy_model(name, rule) for name, rule in settings.policies)
    chosen = [m for m in (*MODELS, *defined) if not settings.models or m.name in settings.models]
    if args.policy:
        try:
            policies = chosen_policies(tuple(args.policy), defined)
        except ValueError as e:
            raise UsageError(str(e)) from None
        chosen = [m for m in chosen if m.policy is None] + policies
    if settings.platform is not None:
        # Every model is bound to it; binder's explorer checks keep their own instance (README, "Platforms").
        chosen = [m.with_platform(settings.platform) for m in chosen]
    if args.source is not None:
        chosen = source_models(args.source, settings)
    faults = frozenset(settings.faults)
    models = [m.with_faults(faults) for m in chosen] if faults else chosen
    if not args.pattern.strip():
        raise UsageError("the pattern is empty; 'all' runs every check, `verify list` shows the names")
    pairs = selected(args.pattern, all_properties(settings.page_size), models)
    if not pairs:
        raise UsageError(f"no property or model matches {args.pattern!r}; `verify list` shows them")
    if args.output is not None:
        check_new(args.output)
    source_tree = None if settings.source is None else Path(settings.source)
    if source_tree is not None and not source_tree.is_dir():
        raise UsageError(f"[tool.verify] source = {settings.source!r} is not a directory (a kernel tree)")

    # Every directory the run writes into is checked before the first proof.
    traces_dir = usable_directory(Path(settings.counterexamples), "counterexamples directory")
    # A dump needs every query sent, so it bypasses the cache.
    cache_dir = None if args.no_cache or args.dump_smt else usable_directory(Path(settings.cache_dir), "cache")
    if args.dump_smt is not None:
        usable_directory(args.dump_smt, "--dump-smt")
    options = RunOptions(
        page_size=settings.page_size,
        timeout_ms=seconds_to_ms(settings.timeout),
        jobs=jobs,
        bmc_depth=settings.bmc_depth,
        explorer=explorer,
        cache_dir=cache_dir,
        dump_smt=None if args.dump_smt is None else args.dump_smt.resolve(),
        second_solver=settings.second_solver if settings.confirm else None,
    )
    start = time.perf_counter()
    checked: list[Checked] = []
    # A machine-readable report on standard output leaves the rows to standard error.
    report_on_stdout = args.format != "text" and args.output is None
    stream = sys.stderr if report_on_stdout else sys.stdout
    verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    read_from = describe_sources(kernel_sources(model for _, model in pairs))
    for line in read_from:  # what the verdicts of the source models are about, before and after the rows
        print(line, file=stream)
    with Display(len(pairs), stream, verbosity, interactive(stream)) as display:
        results = run_checks(pairs, options)
        try:
            for result in results:
                saved = None
                if result.counterexample is not None:
                    saved, _ = save(result.counterexample, traces_dir)
                checked.append(Checked(result, saved))
                display.add(checked[-1])
        finally:
            # On Ctrl-C or SIGTERM out here, the pool's workers end now, not when the generator is collected.
            if isinstance(results, Generator):
                results.close()
    seconds = time.perf_counter() - start
    text_summary = "\n".join([summary([c.result for c in checked], seconds), *read_from])
    display.summary(text_summary)
    if settings.confirm:
        print(
            f"--confirm: every UNSAT answer was re-checked by {confirm_version(settings.second_solver)}"
            f"{' (by z3 where Bitwuzla answered)' if settings.second_solver == 'bitwuzla' else ''}"
            " on the same SMT-LIB2 query;"
            " a disagreement or an undecided re-check is UNKNOWN",
            file=stream,
        )
    report = _report(args.format, checked, seconds, settings, args.pattern, text_summary)
    if args.output is not None:
        write_new(args.output, report)
    elif report_on_stdout:
        sys.stdout.write(report)
    code = exit_code([c.result for c in checked])
    if source_tree is not None:
        # The drift alarm: the kernel source against the models, its worst verdict joining the exit code.
        print(f"conformance of the kernel source in {source_tree} ([tool.verify] source):", file=stream)
        code = max(code, source_command.run(source_tree, None, None, stream))
    return code


def source_models(path: Path, settings: Settings) -> list[ModelSpec]:
    """The models read from a kernel tree or file, each function walked once: an unsupported construct is
    one error line naming its file, line and column (exit 2), before any proof."""
    if settings.faults:
        raise UsageError("--fault seeds faults into the models' code, not into a kernel source given by --source")
    if not path.exists():
        raise UsageError(f"--source {path}: no such file or directory")
    try:
        models = source_steps.source_models(path)
        for model in models:
            source_steps.check_supported(model)
    except SourceError as e:
        raise UsageError(str(e)) from None
    if settings.platform is not None:
        models = tuple(m.with_platform(settings.platform) for m in models)
    return list(models)


def command_mutants(args: argparse.Namespace) -> int:
    _check_solving_flags(args.page_size, args.timeout, args.jobs, args.fault)
    faults = list(dict.fromkeys(args.fault)) or list(ALL_FAULTS)
    start = time.perf_counter()
    outcomes = list(run_mutants(faults, args.page_size, seconds_to_ms(args.timeout), args.jobs))
    print(matrix(outcomes, faults))
    print(witnesses(outcomes, faults))
    print(mutants_summary(outcomes, faults, time.perf_counter() - start))
    return EXIT_OK if all(killers(outcomes, f) for f in faults) else EXIT_UNEXPECTED


def _report(
    form: str, checked: list[Checked], seconds: float, settings: Settings, pattern: str, text_summary: str
) -> str:
    if form == "json":
        from verify.report import json as report_json

        parameters = {
            "pattern": pattern,
            "page_size": settings.page_size,
            "platform": settings.platform,
            "timeout": settings.timeout,
            "bmc_depth": settings.bmc_depth,
            "max_capacity": settings.max_capacity,
            "explorer_page_size": settings.explorer_page_size,
            "models": list(settings.models),
            "faults": list(settings.faults),
        }
        return report_json.render(checked, seconds, parameters)
    if form == "junit":
        from verify.report import junit as report_junit

        return report_junit.render(checked, seconds)
    if form == "sarif":
        from verify.report import sarif as report_sarif

        return report_sarif.render(checked)
    return "\n".join([*(row(c.result, c.trace) for c in checked), text_summary]) + "\n"


def command_show(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_new(args.plot)  # before any output: a saved file is never overwritten
    loaded = load(args.trace)
    if (args.as_pytest or args.as_kunit) and loaded.model.source is not None:
        raise UsageError(f"{'--as-pytest' if args.as_pytest else '--as-kunit'} writes a test of the models' code;"
                         f" {loaded.model.name} is read from {loaded.model.source}")
    replayed = replay(loaded, source_steps.ON_SOURCE)
    if args.as_pytest:
        from verify.traces.regression import as_pytest

        print(as_pytest(replayed.trace), end="")
    elif args.as_kunit:
        from verify.traces.regression import as_kunit

        print(as_kunit(replayed.trace), end="")
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(render_table(loaded, replayed, color))
    if args.plot is not None:
        from verify.traces.plot import plot

        write_new(args.plot, plot(replayed.trace))
        print(f"plot: {args.plot}", file=sys.stderr)
    return EXIT_OK


def command_replay(args: argparse.Namespace) -> int:
    loaded = load(args.trace)
    replayed = replay(loaded, source_steps.ON_SOURCE)
    # A source model's operations run on the concrete source back end, over the Python model's allocator.
    on = "the Python model" if loaded.model.source is None else f"the kernel source {loaded.model.source}"
    if replayed.reproduces:
        print(f"reproduces: {replayed.prop.id} fails at step {replayed.trace.failing_step} on {on}")
        return EXIT_OK
    print(f"does not reproduce: {replayed.prop.id} holds on {on} at every step of the trace")
    return EXIT_UNEXPECTED


def command_graph(args: argparse.Namespace) -> int:
    try:
        policy = chosen_policies((args.policy,), ())[0].binder_policy()
        instance = Instance(args.page_size, args.max_capacity)
        instance.platform  # noqa: B018  (validates the page size)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not 1 <= args.max_capacity <= 4096:
        raise UsageError(f"--max-capacity must be in 1..4096, not {args.max_capacity}")
    if args.output is not None:
        check_new(args.output)
    path: list[BinderStep] = []
    if args.trace is not None:
        traced = replay(load(args.trace), source_steps.ON_SOURCE)
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
        write_new(args.output, dot)
    return EXIT_OK


def command_crosscheck(args: argparse.Namespace) -> int:
    from verify.check import stateful
    from verify.check.crosscheck import CrossCheckError

    for flag, value in (("--examples", args.examples), ("--steps", args.steps)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, not {value}")
    started = time.perf_counter()
    stateful.Coverage.reset()
    machines = stateful.one_choice_each()
    for machine in machines:
        try:
            stateful.run(machine, args.examples, args.steps, args.seed)
        except (CrossCheckError, AssertionError) as e:
            # Hypothesis attaches the minimal failing program to the exception as notes.
            print("\n".join(getattr(e, "__notes__", [])))
            print(f"DISAGREEMENT in {machine.__name__}: {e}")
            return EXIT_UNEXPECTED
    seconds = time.perf_counter() - started
    steps = stateful.Coverage.steps
    print(f"{steps} steps agreed in {seconds:.1f} s ({steps / seconds:.1f} steps/s)")
    for what, count in sorted(stateful.Coverage.seen.items()):
        print(f"  {count:6d}  {what}")
    unreached = stateful.Coverage.unreached(machines)
    points = len(stateful.VEC_POINTS) + len(stateful.BINDER_POINTS)
    print(f"branches and boundaries reached: {points - len(unreached)} of {points}")
    for what in (*stateful.VEC_POINTS, *stateful.BINDER_POINTS):
        count = stateful.Coverage.reached[what]
        print(f"  {count:6d}  {what}" if count else f"  NOT REACHED  {what}")
    print(f"not refuted after {args.examples} programs per machine ({len(machines)} machines)")
    return _agreement()


def _agreement() -> int:
    """The allocator functions and the type invariants, compared over whole domains (verify/check/agreement.py)."""
    from verify.check.agreement import all_agreements

    started = time.perf_counter()
    found = list(all_agreements())
    print(f"encodings compared function by function in {time.perf_counter() - started:.1f} s:")
    for a in found:
        print(f"  {a.line()}")
        for d in a.disagreements[:5]:
            print(f"    {d}")
    return EXIT_UNEXPECTED if any(a.disagreements for a in found) else EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
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
    if args.command == "crosscheck":
        return command_crosscheck(args)
    if args.command == "policies":
        from verify.policies_command import PoliciesUsageError, command_policies

        try:
            return command_policies(args, _checked_settings(_settings(args)))
        except PoliciesUsageError as e:
            raise UsageError(str(e)) from None
    if args.command == "source":
        if args.diff:
            return source_command.run_diff(*args.diff)
        return source_command.run(args.path, args.kvec, args.binder)
    return command_run(args)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt, so that the same cleanup runs."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    def raise_terminated(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (an embedding program): its own handling stays
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit fails no more (Python's EPIPE recipe)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _stopped(how: str, code: int, program: bool) -> int:
    """One line for a run stopped by a signal; its workers have ended already (verify.workers)."""
    print(f"verify: {how}", file=sys.stderr)
    if program:
        # Stopped anywhere, even inside a solver object's constructor, whose finalizer would then
        # print an "Exception ignored" traceback at exit. Nothing of the run depends on it any more.
        sys.unraisablehook = lambda _: None
    return code


def _internal_error(error: Exception, verbose: bool) -> int:
    """One line for a bug in verify: exit 2, never 1 (a finding); the traceback only when asked for."""
    if verbose or os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(error, file=sys.stderr)
    text = (str(error).strip().splitlines() or [""])[0]
    print(
        f"verify: internal error: {type(error).__name__}{': ' + text if text else ''}"
        f" (a bug in verify; please report it with the command line and `verify --version`;"
        f" {TRACEBACK_ENV}=1 shows the traceback)",
        file=sys.stderr,
    )
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    verbose = False
    try:
        parser = build_parser()
        if argv is None:
            import argcomplete

            argcomplete.autocomplete(parser)  # answers a shell's completion request, then exits
        args = parser.parse_args(argv)
        verbose = bool(getattr(args, "verbose", False))
        with _sigterm_raises(), solvers_interruptible():
            code = _dispatch(args)
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
        return code
    except (UsageError, TraceError, ConfigError, OutputExists) as e:
        print(f"verify: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ReplayError as e:
        print(f"verify: internal error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `verify list | head -1`: the reader has all it wanted
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return _stopped("interrupted", EXIT_INTERRUPTED, argv is None)
    except Terminated:
        return _stopped("terminated", EXIT_TERMINATED, argv is None)
    except Exception as e:
        return _internal_error(e, verbose)


if __name__ == "__main__":
    sys.exit(main())
