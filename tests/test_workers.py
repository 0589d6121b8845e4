"""A run's worker processes end with it, however it ends, and a stopped run leaves no partial file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from verify.workers import signals_deferred

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, relies on prctl")


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


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def started_run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """`verify run all` solving in 2 workers (or in-process, with jobs 1), in its own process group."""
    jobs = getattr(request, "param", 2)
    argv = [sys.executable, "-m", "verify", "run", "all", "--jobs", str(jobs), "--cache-dir", "cache"]
    argv += ["--counterexamples", "traces", "--format", "json", "--output", "report.json"]
    run = subprocess.Popen(
        argv, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if jobs > 1:
            assert wait_until(lambda: len(children(run.pid)) == jobs, 60), "the workers never started"
        workers = children(run.pid)
        # Stopped once it has written cache entries, so that a write may be under way.
        assert wait_until(lambda: any((tmp_path / "cache").rglob("*.json")), 60), "no check finished"
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
    started = time.monotonic()
    stop(run)  # type: ignore[operator]
    _, err = run.communicate(timeout=20)
    assert time.monotonic() - started < 10, "the run went on after it was stopped"
    assert run.returncode == code and err.endswith(line) and "Traceback" not in err
    assert not any(alive(w) for w in workers)
    assert not (tmp_path / "report.json").exists()
    assert no_partial_files(tmp_path) == []


@pytest.mark.parametrize("started_run", [1], indirect=True)
def test_ctrl_c_stops_a_run_solving_in_process(started_run: tuple[subprocess.Popen[str], list[int]]) -> None:
    """Z3 catches SIGINT itself and answers "unknown": that must stop the run, not become one more UNKNOWN row."""
    run, _ = started_run
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=20)
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
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert received == []  # held back while a file would be half written
        time.sleep(0.05)
        assert received == [signal.SIGTERM]
    finally:
        done.set()
        other.join()
        signal.signal(signal.SIGTERM, previous)
