"""Fuzz the trace reader: malformed and edited traces, made from the committed ones, fed to every consumer.

    python bench/fuzz_traces.py --count 10000 [--seed 0] [--cli 50]

Each case is a committed trace cut short, byte-flipped, with a key removed or
retyped, a number made huge, negative, a float or Infinity, nested 100,000
deep, its #meta pointed at another model, policy, size, page or property, a
recorded state edited, states from another trace, or a FIFO, /dev/zero, a
directory or an oversized file. Every case is loaded and replayed in process
(verify.traces.trace.load + verify.traces.replay.replay, what every command runs first),
under a time limit; a sample also goes through `verify replay`, `show`,
`show --as-pytest`, `--as-kunit` and `--plot` (in process; FIFO and /dev/zero
in a subprocess). A case passes if it is refused with one line (exit 2 from
the command line), or accepted as a faithful trace: every recorded value the
replay's, and "reproduces" only for a declared violation. Exit 0 when every
case passes; the tally is printed either way.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.catalogue import MODELS  # noqa: E402
from models.faults import FAULTS  # noqa: E402
from verify.cli import main as verify_main  # noqa: E402
from verify.traces.replay import replay  # noqa: E402
from verify.traces.trace import TraceError, load, load_text  # noqa: E402
from verify.traces.trace_input import catalogue_model  # noqa: E402

TIME_LIMIT = 10.0  # seconds per case in process: beyond it, a hang
COMMANDS = (["replay"], ["show"], ["show", "--as-pytest"], ["show", "--as-kunit"], ["show", "--plot"])


@dataclass(frozen=True)
class Case:
    label: str  # what was done to the trace
    text: str | None  # the file's text, or None for a special file
    special: str = ""  # "fifo", "zero", "dir", "big", "missing", "binary"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "refused", "reproduces", "does-not-reproduce", "bad"
    detail: str = ""


def originals() -> list[str]:
    return [p.read_text() for p in sorted((REPO / "counterexamples").glob("*.itf.json"))]


# --- making cases -------------------------------------------------------------------------

HUGE = [-1, -(2**63), 2**62, 2**63, 2**64 - 1, 2**64, 10**30, 2**200]
OTHER: list[Any] = [
    None, True, "7", "x\n\0", 1.5, [], {}, {"#bigint": "-5"}, {"#bigint": "1e3"}, {"#bigint": str(2**64)},
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in a JSON document."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, dict) and set(value) == {"#bigint"}
    )


def _int_paths(doc: Any) -> list[tuple[Any, ...]]:
    return [p for p in _paths(doc) if p and _is_int(_get(doc, p)) and p[-1] != "#bigint"]


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def _truncate(rng: random.Random, text: str) -> Case:
    return Case("truncated", text[: rng.randrange(len(text))])


def _flip(rng: random.Random, text: str) -> Case:
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return Case("bytes flipped", data.decode("utf-8", errors="surrogateescape"))


def _remove_key(rng: random.Random, doc: Any) -> Case:
    paths = [p for p in _paths(doc) if p and isinstance(p[-1], str)]
    path = rng.choice(paths)
    del _get(doc, path[:-1])[path[-1]]
    return Case(f"key {'/'.join(map(str, path))} removed", _dump(doc))


def _retype(rng: random.Random, doc: Any) -> Case:
    path = rng.choice([p for p in _paths(doc) if p])
    _set(doc, path, rng.choice(OTHER))
    return Case(f"{'/'.join(map(str, path))} retyped", json.dumps(doc))


def _number(rng: random.Random, doc: Any) -> Case:
    path = rng.choice(_int_paths(doc))
    value = rng.choice(HUGE)
    _set(doc, path, {"#bigint": str(value)} if rng.random() < 0.5 else value)
    return Case(f"{'/'.join(map(str, path))} = {value}", _dump(doc))


def _constant(rng: random.Random, doc: Any) -> Case:
    path = rng.choice(_int_paths(doc))
    _set(doc, path, "@@CONSTANT@@")
    word = rng.choice(["Infinity", "-Infinity", "NaN", "1e400", "1.0", "-0.0"])
    return Case(f"{'/'.join(map(str, path))} = {word}", _dump(doc).replace('"@@CONSTANT@@"', word))


def _nest(rng: random.Random, doc: Any) -> Case:
    path = rng.choice([p for p in _paths(doc) if p])
    _set(doc, path, "@@DEEP@@")
    depth = rng.choice([17, 1000, 100_000])
    deep = "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth
    return Case(f"{'/'.join(map(str, path))} nested {depth} deep", _dump(doc).replace('"@@DEEP@@"', deep))


def _meta(rng: random.Random, doc: Any) -> Case:
    meta = doc["#meta"]
    field = rng.choice(["model", "policy", "elem_size", "page_size", "faults", "property", "start", "setup",
                        "failing_step", "cycle_from", "loop", "format"])
    models = [m.name for m in MODELS] + ["kvvec-v6/u8!always-noop", "binder/v6!binder-shrink-dropped", "x/y"]
    value: Any
    if field == "model":
        meta["model"] = value = rng.choice(models)
    elif field == "policy":
        meta["variant"]["policy"] = value = rng.choice(["v6", "v4", "naive", "never", None, "v5"])
    elif field == "elem_size":
        meta["parameters"]["elem_size"] = value = rng.choice([0, 1, 2, 8, 16, 24, 4096, 8192, 2**40])
    elif field == "page_size":
        meta["parameters"]["page_size"] = value = rng.choice([64, 128, 4096, 8192, 16384, 65536, 2**20])
    elif field == "faults":
        meta["variant"]["faults"] = value = rng.sample(sorted(FAULTS), rng.randint(1, 2))
    elif field == "property":
        from properties.registry import all_properties

        meta["property"] = value = rng.choice([p.id for p in all_properties(4096)] + ["shrink.nothing"])
    elif field == "start":
        meta["start"] = value = rng.choice(["new", "setup", "arbitrary"])
    elif field == "setup":
        meta["setup"] = value = [{"op": "Reserve", "additional": 100, "outcome": {"kmalloc_ok": True,
                                                                                  "vmalloc_ok": True}}]
    elif field in ("failing_step", "cycle_from"):
        meta[field] = value = rng.choice([0, 1, 2, 3, 5, 9, 10, None])
    elif field == "loop":
        doc["loop"] = value = rng.choice([0, 1, 3])
    else:
        meta["format"] = value = "verify-trace/1"
    return Case(f"#meta {field} = {value!r}", _dump(doc))


def _state(rng: random.Random, doc: Any) -> Case:
    states = doc["states"]
    what = rng.choice(["value", "value", "value", "swap", "drop", "duplicate", "outcome"])
    if what == "value":
        index = rng.randrange(len(states))
        var = rng.choice([v for v in ("len", "capacity", "layout_len", "layout_bytes", "buffer_id", "next_id",
                                      "requested", "physical", "pages") if v in states[index]])
        old = _get(states[index], (var,))
        number = int(old["#bigint"]) if isinstance(old, dict) else int(old)
        new = rng.choice([number + 1, max(number - 1, 0), number * 2, 0, 5])
        states[index][var] = {"#bigint": str(new)}
        return Case(f"states/{index}/{var} {number} -> {new}", _dump(doc))
    if what == "outcome":
        index = rng.randrange(len(states))
        flag = rng.choice(["kmalloc_ok", "vmalloc_ok", "relevant"])
        states[index]["outcome"][flag] = not states[index]["outcome"][flag]
        return Case(f"states/{index}/outcome/{flag} flipped", _dump(doc))
    if what == "swap" and len(states) > 2:
        i, j = rng.sample(range(1, len(states)), 2)
        states[i], states[j] = states[j], states[i]
        return Case(f"states {i} and {j} swapped", _dump(doc))
    if what == "drop" and len(states) > 2:
        del states[rng.randrange(1, len(states))]
        return Case("a state dropped", _dump(doc))
    index = rng.randrange(len(states))
    states.insert(index, json.loads(json.dumps(states[index])))
    return Case(f"state {index} duplicated", _dump(doc))


def _splice(rng: random.Random, doc: Any, other: Any) -> Case:
    doc["states"] = other["states"]
    return Case("states from another trace", _dump(doc))


SPECIAL = ["fifo", "zero", "dir", "big", "missing", "binary"]


def cases(seed: int, count: int) -> Iterator[Case]:
    rng = random.Random(seed)
    texts = originals()
    editors: list[Callable[[random.Random, Any], Case]] = [
        _remove_key, _retype, _number, _constant, _nest, _meta, _meta, _state, _state, _state,
    ]
    for n in range(count):
        if n < len(SPECIAL):
            yield Case(SPECIAL[n], None, SPECIAL[n])
            continue
        text = rng.choice(texts)
        roll = rng.random()
        if roll < 0.12:
            yield _truncate(rng, text)
        elif roll < 0.25:
            yield _flip(rng, text)
        elif roll < 0.30:
            yield _splice(rng, json.loads(text), json.loads(rng.choice(texts)))
        else:
            yield rng.choice(editors)(rng, json.loads(text))


# --- judging a case ------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang


def _faithful(doc: Any, replayed: Any) -> str:
    """Why an accepted trace is not what it claims to be ("" if it is): an oracle apart from the loader."""
    meta = doc["#meta"]
    trace = replayed.trace
    model = catalogue_model(trace.model)
    if model is None or (not replayed.prop.expect_violated(model) and not model.faults):
        return f"{trace.property_id} is not a declared violation on {trace.model}"
    mine = json.loads(trace.text())
    if [_plain(s) for s in mine["states"]] != [_plain(s) for s in doc["states"]]:
        return "the recorded states are not the replay's"
    for key in ("property", "model", "variant", "parameters", "setup", "start", "failing_step", "cycle_from"):
        if mine["#meta"].get(key) != meta.get(key):
            return f"#meta.{key} is not the replayed trace's"
    return ""


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"#bigint"}:
            return int(value["#bigint"])
        if set(value) == {"#tup"}:
            return [_plain(v) for v in value["#tup"]]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def judge(text: str) -> Outcome:
    """Load and replay in process, under the time limit."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        replayed = replay(load_text(text, "fuzzed.itf.json"))
    except TraceError as e:
        message = str(e)
        if "\n" in message or not message:
            return Outcome("bad", f"a refusal of more than one line: {message!r}")
        return Outcome("refused", message)
    except Hang:
        return Outcome("bad", f"no answer within {TIME_LIMIT} s")
    except Exception as e:  # noqa: BLE001  (any other exception is the traceback this looks for)
        return Outcome("bad", f"traceback: {type(e).__name__}: {e}"[:300])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if not replayed.reproduces:
        return Outcome("does-not-reproduce")
    why = _faithful(json.loads(text), replayed)
    return Outcome("bad", f"false 'reproduces': {why}") if why else Outcome("reproduces")


@contextlib.contextmanager
def materialised(case: Case, directory: Path) -> Iterator[Path]:
    """The case as a file (or FIFO, device, directory) in `directory`."""
    path = directory / f"case-{time.monotonic_ns()}.itf.json"
    if case.special == "fifo":
        os.mkfifo(path)
    elif case.special == "zero":
        path = Path("/dev/zero")
    elif case.special == "dir":
        path.mkdir()
    elif case.special == "big":
        with open(path, "wb") as f:
            f.truncate(64 << 20)  # sparse: 64 MiB of zero bytes on no disk
    elif case.special == "binary":
        path.write_bytes(b"\xff\xfe{\x00")
    elif case.special != "missing":
        assert case.text is not None
        path.write_bytes(case.text.encode("utf-8", errors="surrogateescape"))
    yield path


def judge_file(case: Case, directory: Path) -> Outcome:
    """A special file through the loader, in process (O_NONBLOCK keeps a FIFO from blocking)."""
    with materialised(case, directory) as path:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
        try:
            replay(load(path))
        except TraceError as e:
            return Outcome("refused", str(e)) if "\n" not in str(e) else Outcome("bad", "more than one line")
        except Hang:
            return Outcome("bad", f"no answer within {TIME_LIMIT} s")
        except Exception as e:  # noqa: BLE001
            return Outcome("bad", f"traceback: {type(e).__name__}: {e}"[:300])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return Outcome("bad", "a special file was accepted")


def run_command(argv: list[str], path: Path, directory: Path, subprocess_: bool) -> tuple[int, str]:
    """One consumer on one file: (exit code, stderr)."""
    full = [*argv[:1], str(path), *argv[1:]]
    if "--plot" in full:
        full.append(str(directory / f"plot-{time.monotonic_ns()}.png"))
    if subprocess_:
        done = subprocess.run(
            [sys.executable, "-m", "verify", *full], capture_output=True, text=True, timeout=60, cwd=REPO
        )
        return done.returncode, done.stderr
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = verify_main(full)
    return code, err.getvalue()


def check_commands(case: Case, outcome: Outcome, directory: Path, subprocess_: bool) -> str:
    """Every consumer agrees with the loader: a refusal is exit 2 with one line; "" when all is well."""
    with materialised(case, directory) as path:
        for argv in COMMANDS:
            try:
                code, err = run_command(argv, path, directory, subprocess_)
            except subprocess.TimeoutExpired:
                return f"{' '.join(argv)}: no answer within 60 s"
            if outcome.kind == "refused":
                if code != 2 or err.count("\n") != 1 or not err.startswith("verify: error: "):
                    return f"{' '.join(argv)}: exit {code}, stderr {err[:200]!r}"
            elif argv == ["replay"] and code != (0 if outcome.kind == "reproduces" else 1):
                return f"replay: exit {code} for a trace that {outcome.kind}"
            elif argv != ["replay"] and code != 0:
                return f"{' '.join(argv)}: exit {code} on an accepted trace, stderr {err[:200]!r}"
    return ""


def fuzz(seed: int, count: int, cli: int, directory: Path) -> tuple[Counter[str], list[str]]:
    """Run `count` cases (`cli` of them also through every command); the tally and every failure."""
    tally: Counter[str] = Counter()
    failures: list[str] = []
    for n, case in enumerate(cases(seed, count)):
        outcome = judge_file(case, directory) if case.special else judge(case.text or "")
        tally[outcome.kind] += 1
        if outcome.kind == "bad":
            failures.append(f"case {n} ({case.label}): {outcome.detail}")
            continue
        in_subprocess = case.special in ("fifo", "zero")
        if n < cli or in_subprocess:
            problem = check_commands(case, outcome, directory, in_subprocess)
            tally["commands checked"] += 1
            if problem:
                failures.append(f"case {n} ({case.label}): {problem}")
    return tally, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli", type=int, default=50, help="how many cases also go through every command")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-traces-") as tmp:
        tally, failures = fuzz(args.seed, args.count, args.cli, Path(tmp))
    seconds = time.perf_counter() - started
    counts = ", ".join(f"{v} {k}" for k, v in sorted(tally.items()))
    print(f"{args.count} cases (seed {args.seed}) in {seconds:.1f} s: {counts}")
    for failure in failures:
        print("FAIL", failure)
    print(f"{len(failures)} failures: tracebacks, hangs, false 'reproduces', or refusals not one line with exit 2")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
