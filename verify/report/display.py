"""What `verify run` shows while it works: a progress bar on a terminal, plain lines otherwise.

CI systems and pipes get one plain line per check, in a fixed order, so a log
reads the same every run; the bar (rich) appears only on an interactive
terminal outside CI. `--quiet` keeps only the checks that break the gate and
the summary; `--verbose` adds each property's statement.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from verify.report.gate import Checked
from verify.report.text import row

if TYPE_CHECKING:
    from rich.progress import Progress

QUIET, NORMAL, VERBOSE = 0, 1, 2


def interactive(stream: TextIO) -> bool:
    """A terminal a person watches: not piped, not CI, not a dumb terminal."""
    return stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


def progress_bar(label: str, stream: TextIO) -> Progress:
    """A bar that counts tasks done, with the time taken and what is being done, gone when stopped."""
    # rich is imported here, not at the top: a run that is piped or in CI draws no bar and does not load it.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(file=stream),
        transient=True,
    )


class Display:
    def __init__(self, total: int, stream: TextIO, verbosity: int = NORMAL, live: bool = False) -> None:
        self.stream = stream
        self.verbosity = verbosity
        self.progress: Progress | None = None
        if live:
            self.progress = progress_bar("verify", stream)
            self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def lines(self, checked: Checked) -> str | None:
        """What one finished check prints, or None when the verbosity leaves it out."""
        if self.verbosity == QUIET and checked.outcome == "expected":
            return None
        text = row(checked.result, checked.trace)
        if self.verbosity == VERBOSE:
            text += f"\n          statement: {checked.result.prop.statement}"
        return text

    def add(self, checked: Checked) -> None:
        text = self.lines(checked)
        if self.progress is not None:
            if text is not None:
                self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            description = f"{checked.result.prop.id} on {checked.result.model.name}"
            self.progress.update(self.task, advance=1, description=description)
        elif text is not None:
            print(text, file=self.stream, flush=True)

    def summary(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
