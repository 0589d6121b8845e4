"""`verify source`: the command line's view of conformance (verdict lines and exit codes).

One verdict line per function (shrink_to, then reserve). Exit codes: 0 every
function PROVED conformant; 1 some VIOLATED (a replayed difference) and none
UNKNOWN; 2 some UNKNOWN (an unsupported construct, a solver that gave up) or a
usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from models.allocator import Allocation, Effects, Fn
from models.machine import Platform
from models.vec import ShrinkTo, Step, VecState
from verify.source.conformance import KVEC, OPERATIONS, Conformance, Difference, check
from verify.source.locate import SourceError, Unsupported, find_method

EXIT_CONFORMANT, EXIT_DIFFERENT, EXIT_UNKNOWN = 0, 1, 2


def run(tree: Path | None, kvec: Path | None) -> int:
    """Check shrink_to in `kvec`, or in the kernel tree `tree`; print the verdict."""
    if kvec is None:
        assert tree is not None
        if not tree.is_dir():
            return _error(f"{tree} is not a directory (a kernel tree); use --kvec FILE for a single file")
        kvec = tree / KVEC
    if not kvec.is_file():
        return _error(f"{kvec}: no such file")
    codes = []
    for op in OPERATIONS:
        try:
            result = check(op, find_method(kvec, op.impl, op.name))
        except Unsupported as e:
            print(f"UNKNOWN  {op.name}: {e}")
            codes.append(EXIT_UNKNOWN)
            continue
        except SourceError as e:
            return _error(str(e))
        print("\n".join(report(result)))
        if result.unknown:
            codes.append(EXIT_UNKNOWN)
        else:
            codes.append(EXIT_DIFFERENT if result.difference is not None else EXIT_CONFORMANT)
    return max(codes)


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
