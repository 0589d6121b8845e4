"""A run's worker processes end with it, however it ends, and a stopped run leaves no partial file."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from verify.interrupts import signals_held

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, relies on prctl")
# A stopped run ends within this much CPU time (a quiet machine needs well under a second)...
STOP_CPU_SECONDS = 5.0
# ...and within this much wall time, a bound against a hang only: a busy machine may delay it a lot.
HANG = 300


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: state, ppid, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has ended; only its exit status is left


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time the processes have used so far, with that of the children each has waited for."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:  # utime, stime, cutime, cstime: fields 14 to 17 of proc(5)
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def stopped(run: subprocess.Popen[str], workers: list[int], stop: Callable[[], None]) -> tuple[str, str, float]:
    """Stop the run; its output and the CPU seconds the run and its workers spent after the signal.

    "At once" is measured in CPU time, not wall time: on a loaded machine the run may wait many
    seconds for a core, yet the work it does after the signal stays what it is. A run that went
    on checking after the signal spends the rest of `verify run all`, far more than the bound.
    """
    before = cpu_seconds([run.pid, *workers])
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop()
    out, err = run.communicate(timeout=HANG)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # now with the run's and its reaped workers' time
    spent = (after.ru_utime - reaped.ru_utime) + (after.ru_stime - reaped.ru_stime)
    return out, err, spent - before


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default in the run, as a command typed in a terminal has it.

    A process inherits an ignored SIGINT: a shell starts its background jobs so, and then
    Python never turns Ctrl-C into KeyboardInterrupt and the run rightly goes on. The suite
    started in the background (a benchmark, a CI script) must not make these tests fail.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def started_run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """`verify run all` solving in 2 workers (or in-process, with jobs 1), in its own process group."""
    jobs = getattr(request, "param", 2)
    argv = [sys.executable, "-m", "verify", "run", "all", "--jobs", str(jobs), "--cache-dir", "cache"]
    argv += ["--counterexamples", "traces", "--format", "json", "--output", "report.json"]
    run = subprocess.Popen(
        argv, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    try:
        if jobs > 1:
            assert wait_until(lambda: len(children(run.pid)) == jobs, HANG), "the workers never started"
        workers = children(run.pid)
        # Stopped once it has written cache entries, so that a write may be under way.
        assert wait_until(lambda: any((tmp_path / "cache").rglob("*.json")), HANG), "no check finished"
        assert run.poll() is None, "the run ended before it could be stopped"
        yield run, workers
    finally:
        # Whatever the test found, nothing outlives it: the group holds the run and any worker left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.communicate(timeout=30)


def no_partial_files(directory: Path) -> list[str]:
    return sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if p.name.startswith(".") or "tmp" in p.name
    )


def test_workers_end_when_the_run_is_killed(started_run: tuple[subprocess.Popen[str], list[int]]) -> None:
    run, workers = started_run
    assert len(workers) == 2 and all(alive(w) for w in workers)
    os.kill(run.pid, signal.SIGKILL)  # no cleanup can run in the parent
    run.wait(10)
    assert wait_until(lambda: not any(alive(w) for w in workers), 5), "workers outlived a killed run"


@pytest.mark.parametrize(
    ("stop", "code", "line"),
    [
        (lambda run: os.killpg(run.pid, signal.SIGINT), 130, "verify: interrupted\n"),  # Ctrl-C: the whole group
        (lambda run: os.kill(run.pid, signal.SIGTERM), 143, "verify: terminated\n"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stopped_run_ends_at_once_leaving_no_process_and_no_partial_file(
    started_run: tuple[subprocess.Popen[str], list[int]], tmp_path: Path, stop: object, code: int, line: str
) -> None:
    run, workers = started_run
    _, err, spent = stopped(run, workers, lambda: stop(run))  # type: ignore[operator]
    assert spent < STOP_CPU_SECONDS, f"the run went on after it was stopped ({spent:.1f} s of CPU)"
    assert run.returncode == code and err.endswith(line) and "Traceback" not in err
    assert not any(alive(w) for w in workers)
    assert not (tmp_path / "report.json").exists()
    assert no_partial_files(tmp_path) == []


@pytest.mark.parametrize("started_run", [1], indirect=True)
def test_ctrl_c_stops_a_run_solving_in_process(started_run: tuple[subprocess.Popen[str], list[int]]) -> None:
    """Z3 catches SIGINT itself and answers "unknown": that must stop the run, not become one more UNKNOWN row."""
    run, _ = started_run
    out, err, spent = stopped(run, [], lambda: os.killpg(run.pid, signal.SIGINT))
    assert spent < STOP_CPU_SECONDS, f"the run went on after it was stopped ({spent:.1f} s of CPU)"
    assert run.returncode == 130 and err.endswith("verify: interrupted\n") and "Traceback" not in err
    assert "UNKNOWN" not in out  # the rows: with --output, on standard output


def test_signals_wait_until_a_deferred_block_ends() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _: received.append(signum))
    # Another thread, as the parent of a pool has: the kernel may hand it the signal.
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert received == []  # held back while a file would be half written
        time.sleep(0.05)
        assert received == [signal.SIGTERM]
    finally:
        done.set()
        other.join()
        signal.signal(signal.SIGTERM, previous)
