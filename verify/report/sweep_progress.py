"""What `verify policies` shows while it works: one progress bar per phase of the sweep, on a terminal only.

The bar goes to stderr, and only when stderr is a terminal a person watches
(verify.report.display.interactive) and `--quiet` is not given: a pipe, a file
or CI gets the table alone, as before. It counts the executor's calls as they
finish, whichever executor runs them, and leaves nothing on the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

from verify.check.sweep import Executor
from verify.report.display import progress_bar

# The sweep's phases, by the function its executor runs (verify.check.sweep).
PHASES = {
    "explore_cell": "exploring the instance: metrics and explicit-state verdicts",
    "prove_cell": "Z3 properties",
    "all_sizes_cell": "metrics for all sizes",
}


class ShownExecutor:
    """`inner`, with each map's calls counted on a transient progress bar."""

    def __init__(self, inner: Executor, stream: TextIO) -> None:
        self.inner = inner
        self.progress = progress_bar("verify policies", stream)
        self.progress.start()

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]],
            done: Callable[[], None] | None = None) -> list[Any]:
        task = self.progress.add_task(PHASES.get(fn.__name__, fn.__name__), total=len(calls))

        def finished() -> None:
            self.progress.advance(task)
            if done is not None:
                done()

        try:
            return self.inner.map(fn, calls, finished)
        finally:
            self.progress.remove_task(task)

    def close(self) -> None:
        self.progress.stop()
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
