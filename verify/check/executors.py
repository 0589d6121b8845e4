"""Where `verify policies` runs its cells: the local process pool, or a Dask distributed cluster.

Every cell is a call of a module-level function on values that pickle (a
ModelSpec, the RunOptions), so both run the same code on the same inputs and
give the same results. The proof cache is the directory in the RunOptions, read
and written by whichever process runs a cell: a cluster shares it when its
workers see the same file system (a local cluster always does); a worker that
cannot reach it only misses the cache, as an empty one would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from verify import workers

EXECUTORS = ("local", "dask")


class LocalExecutor:
    """The process pool `verify run` uses (verify.workers): its workers end with the run."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]],
            done: Callable[[], None] | None = None) -> list[Any]:
        if workers.bounded(self.jobs, len(calls)) <= 1:
            return [_counted(fn(*args), done) for args in calls]
        with workers.pool(self.jobs, len(calls)) as pool:
            futures: list[Future[Any]] = [pool.submit(fn, *args) for args in calls]
            if done is not None:
                for f in futures:
                    f.add_done_callback(lambda _: done())
            return [f.result() for f in futures]


class DaskExecutor:
    """A Dask distributed scheduler at `address` (the optional extra `distributed`)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError(
                "--executor dask needs Dask distributed: pip install 'verify[distributed]'") from None
        try:
            self.client = Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise ExecutorError(f"--address {address}: no Dask scheduler answers there ({e})") from None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]],
            done: Callable[[], None] | None = None) -> list[Any]:
        # pure=False: a cell is run each time it is asked for, as in the local pool, never answered by Dask's
        # own memory of an earlier result (the proof cache is the only cache, with its own checks).
        futures = [self.client.submit(fn, *args, pure=False) for args in calls]
        if done is not None:
            for f in futures:
                f.add_done_callback(lambda _: done())
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()


def _counted(result: Any, done: Callable[[], None] | None) -> Any:
    if done is not None:
        done()
    return result


class ExecutorError(Exception):
    """An executor that cannot be used: one line for the user."""
