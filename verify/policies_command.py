"""`verify policies`: the family sweep, its table and plot, and `--best` (README, "Comparing policies").

Exit codes: 0 when every verdict the table or `--best` needs is decided, 1 when
`--best` finds no policy satisfying its constraint, 2 for an UNKNOWN verdict, a
usage error or an internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from models.binder import POLICIES
from models.catalogue import chosen_policies, model_named, policy_model
from models.policy_lang import PolicyError
from models.policy_lang import parse as parse_rule
from properties.base import Verdict
from verify.check import constraint as constraints
from verify.check.executors import DaskExecutor, ExecutorError, LocalExecutor
from verify.check.policy_family import TARGETS, Family, parse_numbers
from verify.check.runner import RunOptions
from verify.check.sweep import Candidate, Executor, PolicyRow, for_all_sizes, prove, sweep
from verify.config import Settings
from verify.report import policies as report
from verify.report.display import interactive
from verify.report.gate import EXIT_ERROR, EXIT_OK, EXIT_UNEXPECTED
from verify.report.output import check_new, usable_directory, write_new
from verify.report.sweep_progress import ShownExecutor
from verify.search.explorer import Instance
from verify.search.solver import seconds_to_ms
from verify.source import steps as source_steps
from verify.source.locate import SourceError


class PoliciesUsageError(Exception):
    """A bad flag or value: one line, exit 2."""


def _family(args: argparse.Namespace) -> Family:
    try:
        divisors = parse_numbers(args.divisors, "--divisors")
        floors = parse_numbers(args.floors, "--floors")
    except ValueError as e:
        raise PoliciesUsageError(str(e)) from None
    if any(d < 1 for d in divisors):
        raise PoliciesUsageError(f"--divisors {args.divisors!r}: a divisor is at least 1")
    targets = tuple(args.target) if args.target else TARGETS
    for target in targets:
        try:
            parse_rule(f"true => {target}")
        except PolicyError as e:
            # The column within the target as the user wrote it: past the `true => ` put before it.
            raise PoliciesUsageError(f"--target {target!r}: column {e.column - 8}: "
                                     f"{str(e).partition(': ')[2]}") from None
    return Family(divisors, floors, targets)


def candidates(args: argparse.Namespace, settings: Settings) -> list[Candidate]:
    """The built-in policies, the family, the configured ones, --policy's and --source's: each once, by name."""
    found: dict[str, Candidate] = {}

    def add(name: str, c: Candidate) -> None:
        found.setdefault(name, c)

    for p in POLICIES:
        add(p.name, Candidate(p.name, model_named(f"binder/{p.name}"), "built-in", p.rule))
    if not args.no_family:
        for model in _family(args).models():
            assert model.policy is not None
            add(model.policy, Candidate(model.policy, model, "family", model.binder_policy().rule))
    defined = tuple(policy_model(name, rule) for name, rule in settings.policies)
    for model in defined:
        assert model.policy is not None
        add(model.policy, Candidate(model.policy, model, "configured", model.binder_policy().rule))
    if args.policy:
        try:
            chosen = chosen_policies(tuple(args.policy), defined)
        except ValueError as e:
            raise PoliciesUsageError(str(e)) from None
        for model in chosen:
            assert model.policy is not None
            if model.policy not in found:
                add(model.policy, Candidate(model.policy, model, "--policy", model.binder_policy().rule))
    if args.source is not None:
        add("source", _source_candidate(args.source))
    return list(found.values())


def _source_candidate(path: Path) -> Candidate:
    """binder's operations read from a context.rs (the `binder-src` model of `verify run --source`)."""
    if not path.exists():
        raise PoliciesUsageError(f"--source {path}: no such file or directory")
    try:
        models = [m for m in source_steps.source_models(path) if m.policy is not None]
        for model in models:
            source_steps.check_supported(model)
    except SourceError as e:
        raise PoliciesUsageError(str(e)) from None
    if not models:
        raise PoliciesUsageError(f"--source {path}: no drivers/android/binder/context.rs there")
    model = models[0]
    assert model.source is not None
    return Candidate("source", model, "source", f"read from {model.source}")


def _options(args: argparse.Namespace, settings: Settings) -> RunOptions:
    """The run's options from settings the command line has checked (verify.cli._checked_settings)."""
    assert settings.jobs is not None
    cache_dir = None if args.no_cache else usable_directory(Path(settings.cache_dir), "cache")
    return RunOptions(
        page_size=settings.page_size,
        timeout_ms=seconds_to_ms(settings.timeout),
        jobs=settings.jobs,
        bmc_depth=settings.bmc_depth,
        explorer=Instance(settings.explorer_page_size, settings.max_capacity),
        cache_dir=None if cache_dir is None else cache_dir.resolve(),
    )


def _executor(args: argparse.Namespace, options: RunOptions) -> Executor:
    if args.executor == "local":
        if args.address is not None:
            raise PoliciesUsageError("--address is for --executor dask")
        return LocalExecutor(options.jobs)
    if args.address is None:
        raise PoliciesUsageError("--executor dask needs --address, the scheduler's (e.g. tcp://127.0.0.1:8786)")
    try:
        return DaskExecutor(args.address)
    except ExecutorError as e:
        raise PoliciesUsageError(str(e)) from None


def command_policies(args: argparse.Namespace, settings: Settings) -> int:
    constraint = None
    if args.best is not None:
        try:
            constraint = constraints.parse(args.best)
        except constraints.ConstraintError as e:
            raise PoliciesUsageError(f"--best {args.best!r}: {e}") from None
    options = _options(args, settings)
    chosen = candidates(args, settings)
    for path in (args.output, args.plot):
        if path is not None:
            check_new(path)
    if args.output is not None and args.plot is not None and args.output.resolve() == args.plot.resolve():
        raise PoliciesUsageError("--output and --plot name the same file")
    executor = _executor(args, options)
    if not args.quiet and interactive(sys.stderr):
        executor = ShownExecutor(executor, sys.stderr)
    start = time.perf_counter()
    try:
        rows = sweep(chosen, options, executor, args.prove)
        if args.all_sizes:
            named = [r.name for r in rows if r.origin != "family"]
            rows = for_all_sizes(rows, named, chosen, options, executor)
        best_rows = None
        if constraint is not None:
            def decide(some: list[PolicyRow]) -> list[PolicyRow]:
                nonlocal rows
                rows = prove(rows, [r.name for r in some], chosen, options, executor)
                by_name = {r.name: r for r in rows}
                return [by_name[r.name] for r in some]

            best_rows = constraints.best(rows, constraint, args.minimise, decide)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    seconds = time.perf_counter() - start
    best_line = None if best_rows is None else _best_line(args.best, args.minimise, best_rows)
    rendered = _render(args, rows, options, best_rows, best_line)
    if args.output is not None:
        write_new(args.output, rendered)
    else:
        sys.stdout.write(rendered)
    if args.plot is not None:
        write_new(args.plot, report.plot(rows, options.explorer))
    cells = sum(len(r.cells) for r in rows)
    if not args.quiet:
        print(f"{len(rows)} policies, {cells} verdicts in {seconds:.1f}s", file=sys.stderr)
    if any(c.verdict == Verdict.UNKNOWN.value for r in rows for c in r.cells.values()):
        return EXIT_ERROR
    return EXIT_UNEXPECTED if best_rows == [] else EXIT_OK


def _best_line(text: str, metric: str, found: list[PolicyRow]) -> str:
    if not found:
        return f"best: no policy of the sweep satisfies {text!r}"
    names = ", ".join(f"{r.name} ({r.rule})" for r in found)
    return f"best: least {metric} satisfying {text!r}, every property run on each: {names}"


def _render(args: argparse.Namespace, rows: list[PolicyRow], options: RunOptions, best_rows: list[PolicyRow] | None,
            best_line: str | None) -> str:
    if args.format == "csv":
        return report.to_csv(rows)
    if args.format == "json":
        parameters: dict[str, Any] = {
            "page_size": options.page_size, "timeout_ms": options.timeout_ms, "bmc_depth": options.bmc_depth,
            "prove": args.prove, "best": args.best, "minimise": args.minimise if args.best else None,
        }
        return report.to_json(rows, options.explorer, parameters, None if best_rows is None else
                              [r.name for r in best_rows])
    return report.text(rows, options.explorer, best_line)
