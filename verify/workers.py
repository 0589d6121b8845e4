"""Worker processes that never outlive their run, and never more of them than there is work.

`verify run` and `verify mutants` solve checks in forked worker processes. A
plain ProcessPoolExecutor's workers go on solving (and writing cache entries)
after the parent is killed, and on Ctrl-C the pool waits for every queued
check. Here:

- each worker asks Linux to send it SIGTERM when its parent dies, by any signal,
  SIGKILL included (prctl PR_SET_PDEATHSIG), then checks that the parent is
  still the one that forked it, closing the window in which the parent died
  first; a worker's SIGTERM does its default, immediate exit, even inside a solver;
- workers ignore SIGINT: Ctrl-C reaches the whole process group, and the parent
  alone decides (Z3 would otherwise answer each running query "unknown");
- when the parent leaves the pool early (Ctrl-C, SIGTERM, an error), it sends
  SIGTERM to every worker, waits for them and kills what remains;
- a worker writing a file holds SIGTERM back until the file is whole and in
  place (`verify.interrupts.signals_held`), so a stopped run leaves no temporary file.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from verify.interrupts import no_signal_wakeup

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Solving is CPU-bound: beyond a few workers per core, more only costs memory.
WORKERS_PER_CORE = 4
STOP_GRACE_SECONDS = 2.0  # how long a worker told to stop may take before it is killed


def cores() -> int:
    return len(os.sched_getaffinity(0))


def bounded(jobs: int, tasks: int) -> int:
    """How many workers `jobs` asks for, at most one per task and WORKERS_PER_CORE per core."""
    return max(1, min(jobs, tasks, WORKERS_PER_CORE * cores()))


def _die_with_parent(parent: int) -> None:
    """The initializer of every worker, run right after the fork."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Blocked as well as ignored: Z3 installs its own SIGINT handler while it solves.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler, inherited by fork, would wait for Python
    no_signal_wakeup()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _stop(executor: ProcessPoolExecutor) -> None:
    """End every worker now, the queued work with them."""
    processes = list((executor._processes or {}).values())  # noqa: SLF001  (public only from Python 3.14 on)
    for process in processes:
        with contextlib.suppress(OSError):
            process.terminate()
    for process in processes:
        process.join(STOP_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def pool(jobs: int, tasks: int) -> Iterator[ProcessPoolExecutor]:
    """A fork pool of `bounded(jobs, tasks)` workers that end with the parent, or when it leaves the block early.

    fork keeps start-up cheap: the workers inherit the imported solver. The
    workers are forked by the thread that submits first, which must be the
    one that lives as long as the pool: a worker's parent-death signal follows
    the forking thread.
    """
    executor = ProcessPoolExecutor(
        max_workers=bounded(jobs, tasks),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield executor
    except BaseException:
        _stop(executor)
        raise
    executor.shutdown(wait=True)
