"""`verify source`: the command line's view of conformance (verdict lines and exit codes).

One verdict per function (shrink_to, reserve, then binder's register_process
and deregister_process). Exit codes: 0 every function PROVED conformant (a
deregistration: to one of the model's policies); 1 some VIOLATED (a replayed
difference) and none UNKNOWN; 2 some UNKNOWN (an unsupported construct, a
solver that gave up) or a usage error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from models.allocator import Allocation, Effects, Fn
from models.binder import ELEM_SIZE, BinderAction, Register
from models.machine import Platform
from models.vec import Reserve, ShrinkTo, Step, VecState
from verify.source import binder_conformance
from verify.source import diff as semantic_diff
from verify.source.binder import CONTEXT, DEREGISTER, IMPL, REGISTER
from verify.source.binder_conformance import BinderConformance, model_target
from verify.source.conformance import KVEC, OPERATIONS, Conformance, Difference, check
from verify.source.locate import SourceError, Unsupported, find_method, parse
from verify.workers import bounded, cores, pool

EXIT_CONFORMANT, EXIT_DIFFERENT, EXIT_UNKNOWN = 0, 1, 2
EXIT_USAGE = -1  # a file the front end cannot read: an error line was printed, the exit code is 2


def run(tree: Path | None, kvec: Path | None, binder: Path | None = None, out: TextIO | None = None) -> int:
    """Check the file given (`kvec` or `binder`), or the kernel tree `tree`; print the verdicts on `out` (stdout)."""
    if tree is not None:
        if not tree.is_dir():
            return _error(f"{tree} is not a directory (a kernel tree); use --kvec or --binder FILE for a single file")
        kvec = tree / KVEC
        if (tree / CONTEXT).is_file():
            binder = tree / CONTEXT
        else:
            print(f"binder not checked: no {CONTEXT} in {tree}", file=out)
    for given in (kvec, binder):
        if given is not None and not given.exists():
            return _error(f"{given}: no such file")
    tasks = [] if kvec is None else [FunctionCheck(kvec, op.name) for op in OPERATIONS]
    tasks += [] if binder is None else [FunctionCheck(binder, name) for name in (REGISTER, DEREGISTER)]
    codes = []
    unreadable: set[Path] = set()
    for task, verdict in zip(tasks, _checked(tasks), strict=True):
        if task.path in unreadable:
            continue  # the file's first error was reported: its other functions say nothing more
        if verdict.error:
            _error(verdict.error)
            unreadable.add(task.path)
            codes.append(EXIT_USAGE)
            continue
        print("\n".join(verdict.lines), file=out)
        codes.append(verdict.code)
    if EXIT_USAGE in codes:
        return EXIT_UNKNOWN
    return max(codes)


@dataclass(frozen=True)
class FunctionCheck:
    """One function's conformance, as a worker process runs it: the file and the function's name."""

    path: Path
    name: str


@dataclass(frozen=True)
class Verdict:
    """A function's verdict lines and exit code, or the error line of a file the front end cannot read."""

    lines: tuple[str, ...] = ()
    code: int = EXIT_CONFORMANT
    error: str = ""


def _checked(tasks: list[FunctionCheck]) -> list[Verdict]:
    """Every task's verdict, in order; the functions are independent proofs, so each core takes one at a time."""
    if bounded(cores(), len(tasks)) == 1:
        return [check_function(task) for task in tasks]
    with pool(cores(), len(tasks)) as executor:
        return list(executor.map(check_function, tasks))


def check_function(task: FunctionCheck) -> Verdict:
    """Prove one function conformant, or find its difference: the verdict as `verify source` prints it."""
    try:
        lines, unknown, different = _binder_check(task) if task.name in (REGISTER, DEREGISTER) else _kvec_check(task)
    except Unsupported as e:
        return Verdict((f"UNKNOWN  {task.name}: {e}",), EXIT_UNKNOWN)
    except SourceError as e:
        return Verdict(error=str(e), code=EXIT_USAGE)
    code = EXIT_UNKNOWN if unknown else EXIT_DIFFERENT if different else EXIT_CONFORMANT
    return Verdict(tuple(lines), code)


def _kvec_check(task: FunctionCheck) -> tuple[list[str], str, bool]:
    (op,) = [op for op in OPERATIONS if op.name == task.name]
    result = check(op, find_method(task.path, op.impl, op.name))
    return report(result), result.unknown, result.difference is not None


def _binder_check(task: FunctionCheck) -> tuple[list[str], str, bool]:
    result = binder_conformance.check(find_method(task.path, IMPL, task.name), task.name)
    return binder_report(result), result.unknown, result.matches is None


def _error(message: str) -> int:
    print(f"verify: error: {message}", file=sys.stderr)
    return EXIT_UNKNOWN


def report(result: Conformance) -> list[str]:
    name = result.operation.name
    where = f"{result.function.path}:{result.function.line}"
    sizes = ", ".join(str(s) for s in result.sizes)
    if result.unknown:
        return [f"UNKNOWN  {name} ({where}): {result.unknown}"]
    diff = result.difference
    if diff is None:
        return [
            f"PROVED conformant  {name} ({where}) makes the model's transition (models/vec.py) "
            f"for size_of::<T>() in {{{sizes}}}, every pre-state satisfying the type invariants, every "
            f"{result.operation.argument} "
            f"and every allocator outcome ({result.seconds:.1f} s)"
        ]
    plat = Platform(diff.elem_size, diff.page_size)
    lines = ", ".join(str(n) for n in diff.lines)
    return [
        f"VIOLATED  {name} ({where}) differs from the model in: {', '.join(diff.differing())}",
        f"  input:  size_of::<T>() = {diff.elem_size}, PAGE_SIZE {diff.page_size}; {state_text(plat, diff.pre)}; "
        f"{name}({_argument(diff)}), {diff.action.outcome.describe()}",
        f"  source: {step_text(plat, diff.source)}",
        f"  model:  {step_text(plat, diff.model)}",
        f"  source lines run: {result.function.path}:{lines}",
        "  (replayed on the concrete source back end and on the reference model)",
    ]


def _argument(diff: Difference) -> int:
    return diff.action.min_capacity if isinstance(diff.action, ShrinkTo) else diff.action.additional


def state_text(plat: Platform, v: VecState) -> str:
    return f"len={v.len} capacity={v.capacity(plat)} buffer: {alloc_text(v.buf)}"


def alloc_text(a: Allocation | None) -> str:
    if a is None:
        return "none (dangling)"
    return f"{a.kind.value} #{a.id} ({a.requested} bytes requested, {a.physical} held)"


def step_text(plat: Platform, step: Step) -> str:
    result = "Ok" if step.ok else "Err"
    wrapped = "; an arithmetic wrap-around" if step.overflow else ""
    return f"{result}, {state_text(plat, step.post)}; {effects_text(step.effects)}{wrapped}"


def effects_text(e: Effects) -> str:
    names = {Fn.ALLOC: "alloc", Fn.REALLOC: "realloc", Fn.FREE: "free"}
    calls = [f"{names[c.fn]}(new {c.new_bytes} bytes, old {c.old_bytes} bytes)" for c in e.calls]
    parts = ["calls: " + (", ".join(calls) if calls else "none")]
    if e.copied is not None:
        parts.append(f"copy of {e.copied.nbytes} bytes #{e.copied.src} -> #{e.copied.dst}")
    if e.freed is not None:
        parts.append(f"free of #{e.freed.alloc_id} with {e.freed.nbytes} bytes")
    return "; ".join(parts)


def binder_report(result: BinderConformance) -> list[str]:
    name = result.name
    where = f"{result.function.path}:{result.function.line}"
    every = "every pre-state satisfying the type invariants, every process and every allocator outcome"
    if result.unknown:
        return [f"UNKNOWN  {name} ({where}): {result.unknown}"]
    if result.matches is not None and name == REGISTER:
        return [f"PROVED conformant  {name} ({where}) makes the model's registration (models/binder.py) "
                f"for {every} ({result.seconds:.1f} s)"]
    if result.matches is not None:
        return [f"PROVED conformant  {name} ({where}) is the model's policy {result.matches.name} "
                f"({result.matches.rule}) for {every} ({result.seconds:.1f} s)"]
    if name == REGISTER:
        lines = [f"VIOLATED  {name} ({where}) differs from the model's registration (models/binder.py)"]
    else:
        names = ", ".join(d.policy.name for d in result.differences)
        lines = [f"VIOLATED  {name} ({where}) matches none of the model's policies ({names})"]
    for diff in result.differences:
        plat = Platform(ELEM_SIZE, 4096)
        src = diff.source
        if name != REGISTER:
            lines.append(f"  against {diff.policy.name} ({diff.policy.rule}):")
        lines += [
            f"    differs in: {', '.join(diff.differing())}",
            f"    input:  {state_text(plat, src.pre)}; {_binder_action(src.action)}, {src.action.outcome.describe()}",
            f"    source: {_binder_result(plat, src.ok, src.post, src.shrink_target)}"
            + ("; an arithmetic wrap-around" if src.overflow else ""),
            f"    model:  {_binder_result(plat, diff.model.ok, diff.model.post, model_target(diff.model))}",
            f"    source lines run: {result.function.path}:{', '.join(str(n) for n in src.lines)}",
        ]
    lines.append("  (replayed on the concrete source back end and on the reference model)")
    return lines


def _binder_action(action: BinderAction) -> str:
    return f"{'register' if isinstance(action, Register) else 'deregister'} process {action.pid}"


def _binder_result(plat: Platform, ok: bool, post: VecState, target: int | None) -> str:
    shrink = "no shrink_to" if target is None else f"shrink_to({target})"
    return f"{'Ok' if ok else 'Err'}, {shrink}, then {state_text(plat, post)}"


def run_diff(old: Path, new: Path) -> int:
    """Compare two kernel trees (kvec.rs, and context.rs where both have it), or two kvec.rs or context.rs files."""
    pairs: list[tuple[Path, Path]] = []
    if old.is_dir() and new.is_dir():
        pairs.append((old / KVEC, new / KVEC))
        if (old / CONTEXT).is_file() and (new / CONTEXT).is_file():
            pairs.append((old / CONTEXT, new / CONTEXT))
        else:
            print(f"binder not compared: {CONTEXT} is not in both trees")
    else:
        pairs.append((old, new))
    for pair in pairs:
        for given in pair:
            if not given.exists():  # anything else there (a FIFO, a device) the reader refuses
                return _error(f"{given}: no such file (--diff takes two files or two kernel trees)")
    codes = []
    for before, after in pairs:
        try:
            binder = _is_binder(before)
            if binder != _is_binder(after):
                return _error(f"{before} and {after} are not the same kind of file (kvec.rs, context.rs)")
            codes += _diff_binder(before, after) if binder else _diff_kvec(before, after)
        except SourceError as e:
            return _error(str(e))
    return max(codes)


def _is_binder(path: Path) -> bool:
    """A file with binder's `impl Context` functions is a context.rs; any other, a kvec.rs."""
    parse(path)  # a file that cannot be read or parsed is an error, not a kvec.rs
    try:
        find_method(path, IMPL, REGISTER)
    except SourceError:
        return False
    return True


def _diff_kvec(old: Path, new: Path) -> list[int]:
    codes = []
    for op in OPERATIONS:
        try:
            result = semantic_diff.diff(op, find_method(old, op.impl, op.name), find_method(new, op.impl, op.name))
        except Unsupported as e:
            print(f"UNKNOWN  {op.name}: {e}")
            codes.append(EXIT_UNKNOWN)
            continue
        print("\n".join(diff_report(result)))
        codes.append(_diff_code(result.unknown, bool(result.changes)))
    return codes


def _diff_binder(old: Path, new: Path) -> list[int]:
    codes = []
    for name in (REGISTER, DEREGISTER):
        try:
            result = semantic_diff.diff_binder(name, find_method(old, IMPL, name), find_method(new, IMPL, name))
        except Unsupported as e:
            print(f"UNKNOWN  {name}: {e}")
            codes.append(EXIT_UNKNOWN)
            continue
        print("\n".join(binder_diff_report(result)))
        codes.append(_diff_code(result.unknown, bool(result.changes)))
    return codes


def _diff_code(unknown: str, changed: bool) -> int:
    return EXIT_UNKNOWN if unknown else EXIT_DIFFERENT if changed else EXIT_CONFORMANT


def binder_diff_report(result: semantic_diff.BinderFunctionDiff) -> list[str]:
    name = result.name
    where = f"OLD {result.old.path}:{result.old.line} and NEW {result.new.path}:{result.new.line}"
    if result.unknown:
        return [f"UNKNOWN  {name} ({where}): {result.unknown}"]
    if not result.changes:
        return [
            f"PROVED equivalent  {name} ({where}) make the same transition for every list satisfying the type "
            f"invariants, every process and every allocator outcome ({result.seconds:.1f} s)"
        ]
    plat = Platform(ELEM_SIZE, 4096)
    lines = [f"CHANGED  {name} ({where}): {_kinds(len(result.changes))}"]
    for number, change in enumerate(result.changes, 1):
        old, new = change.old, change.new
        lines += [
            f"  {number}. capacity {old.pre.capacity(plat)}, len {old.pre.len}, {_binder_action(old.action)}, "
            f"{old.action.outcome.describe()}: OLD {_shrink_text(old.shrink_target)}, "
            f"NEW {_shrink_text(new.shrink_target)}",
            f"    differs in: {', '.join(change.differing())}",
            f"    input: {state_text(plat, old.pre)}",
            f"    OLD: {_binder_result(plat, old.ok, old.post, old.shrink_target)}",
            f"         lines run: {result.old.path}:{', '.join(str(n) for n in old.lines)}",
            f"    NEW: {_binder_result(plat, new.ok, new.post, new.shrink_target)}",
            f"         lines run: {result.new.path}:{', '.join(str(n) for n in new.lines)}",
        ]
    lines.append("  (each input replayed on the concrete source back end for both versions)")
    return lines


def _kinds(n: int) -> str:
    return "1 kind of behaviour differs" if n == 1 else f"{n} kinds of behaviour differ"


def _shrink_text(target: int | None) -> str:
    return "no shrink_to" if target is None else f"shrink_to({target})"


def diff_report(result: semantic_diff.FunctionDiff) -> list[str]:
    name = result.operation.name
    where = f"OLD {result.old.path}:{result.old.line} and NEW {result.new.path}:{result.new.line}"
    if result.unknown:
        return [f"UNKNOWN  {name} ({where}): {result.unknown}"]
    if not result.changes:
        sizes = ", ".join(str(s) for s in result.sizes)
        return [
            f"PROVED equivalent  {name} ({where}) make the same transition for size_of::<T>() in {{{sizes}}}, "
            f"every pre-state satisfying the type invariants, every {result.operation.argument} and every "
            f"allocator outcome ({result.seconds:.1f} s)"
        ]
    lines = [f"CHANGED  {name} ({where}): {_kinds(len(result.changes))}"]
    for number, change in enumerate(result.changes, 1):
        plat = Platform(change.elem_size, change.page_size)
        buffer = "no buffer" if change.pre.buf is None else f"a {change.pre.buf.kind.value} buffer"
        lines += [
            f"  {number}. {buffer} of capacity {change.pre.capacity(plat)}, {name}({_argument_of(change.action)}), "
            f"{change.action.outcome.describe()}: OLD {_calls(change.old)}, NEW {_calls(change.new)}",
            f"    differs in: {', '.join(change.differing())}",
            f"    input: size_of::<T>() = {change.elem_size}, PAGE_SIZE {change.page_size}; "
            f"{state_text(plat, change.pre)}",
            f"    OLD: {step_text(plat, change.old)}",
            f"         lines run: {result.old.path}:{', '.join(str(n) for n in change.old_lines)}",
            f"    NEW: {step_text(plat, change.new)}",
            f"         lines run: {result.new.path}:{', '.join(str(n) for n in change.new_lines)}",
        ]
    lines.append("  (each input replayed on the concrete source back end for both versions)")
    return lines


def _argument_of(action: ShrinkTo | Reserve) -> int:
    return action.min_capacity if isinstance(action, ShrinkTo) else action.additional


def _calls(step: Step) -> str:
    names = {Fn.ALLOC: "alloc", Fn.REALLOC: "realloc", Fn.FREE: "free"}
    calls = " + ".join(names[c.fn] for c in step.effects.calls) or "no allocator call"
    return calls + ("" if step.ok else ", Err")
