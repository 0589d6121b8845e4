"""Ctrl-C and SIGTERM stop the solver at work at once, and are never lost inside it.

Python runs a signal's handler only between bytecodes of the main thread, so
a signal that comes while a solver works waits for the query to end. Worse,
Z3 takes SIGINT for itself while it solves (its `ctrl_c` parameter): the first
Ctrl-C cancels the query and nothing tells Python, so a query that ends sat or
unsat all the same swallows the Ctrl-C, and the run goes on to the end. Here:

- Z3 is told to leave SIGINT alone, so Python's handlers see every signal;
- Python's own low-level handler writes each signal's number to a wakeup file
  descriptor (`signal.set_wakeup_fd`) the moment it arrives, even while the
  main thread is inside Z3; a watcher thread reading it interrupts Z3
  (Z3_interrupt is made to be called from another thread), and the main thread
  raises the signal's exception as soon as the query returns;
- Bitwuzla keeps the interpreter while it solves, but asks a terminator between
  steps: during its query the signals are held (`signals_held`) and the
  terminator says stop once one has come;
- a handler's exception can still be lost: raised inside a finalizer (Z3's
  objects free their terms in `__del__`, which runs at any bytecode), Python
  prints it and goes on. So every signal is also recorded, and the solver
  calls `stop_if_signalled` before and after each query, the run after each
  check: a lost signal stops the run there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

Handler = Callable[[int, Any], Any]

# Z3 contexts besides the main one that a signal must interrupt (a deep unrolling keeps its own).
_contexts: weakref.WeakSet[Any] = weakref.WeakSet()
# The signals that came within `solvers_interruptible`, each with the handler that acts on it.
_signalled: list[tuple[int, Handler]] = []


def interrupted_with_main(context: Any) -> None:
    """Interrupt `context` too when a signal comes, as long as it lives."""
    _contexts.add(context)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """SIGTERM and SIGINT wait until the block ends; the list says which came meanwhile.

    They are held by a handler, then raised again as they would have acted
    (a worker's SIGTERM ends it, the parent's raises). A thread mask would not
    do: the kernel hands a process's signal to any thread that does not block it.
    Only the main thread can set handlers; elsewhere the block runs as it is.
    """
    held: list[int] = []
    if not _in_main_thread():
        yield held
        return

    def hold(number: int, _: Any) -> None:
        held.append(number)

    # None: a handler set outside Python, which could not be put back.
    try:
        with _handlers_replaced(lambda _: hold, lambda handler: handler is not None):
            yield held
    finally:
        for number in held:
            signal.raise_signal(number)


@contextlib.contextmanager
def _handlers_replaced(replacement: Callable[[Any], Handler], replaced: Callable[[Any], bool]) -> Iterator[None]:
    """Within the block, SIGTERM's and SIGINT's handlers that `replaced` picks are `replacement(handler)`."""
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        if replaced(handler):
            previous[signum] = handler
            signal.signal(signum, replacement(handler))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def solvers_interruptible() -> Iterator[None]:
    """Within the block, a signal with a Python handler interrupts the Z3 query running in the main thread."""
    if not _in_main_thread():
        yield
        return
    import z3

    unraisable_hook = sys.unraisablehook
    sys.unraisablehook = _lost_signal_unprinted(unraisable_hook)
    ctrl_c = z3.get_param("ctrl_c")
    z3.set_param("ctrl_c", False)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd's requirement: a full pipe must not block a handler
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_interrupt_z3_on_signal, args=(read_end,), daemon=True)
    watcher.start()
    try:
        # Ignored or at its default, a signal has no handler to run, nor to lose.
        with _handlers_replaced(_recorded, callable):
            yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.close(write_end)  # the watcher reads the end of the pipe and returns
        watcher.join()
        os.close(read_end)
        z3.set_param("ctrl_c", ctrl_c)
        sys.unraisablehook = unraisable_hook
        _signalled.clear()


def _recorded(handler: Handler) -> Handler:
    def record_then_handle(signum: int, frame: Any) -> Any:
        _signalled.append((signum, handler))
        return handler(signum, frame)

    return record_then_handle


def _lost_signal_unprinted(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Once a signal has come, what finalizers raise is not printed: the run is stopping, as at exit.

    A handler's exception raised in a finalizer is lost there, as itself or
    wrapped (ctypes turns it into an ArgumentError inside Z3's `__del__`); the
    run stops on its signal all the same.
    """

    def unless_signalled(unraisable: Any) -> Any:
        if _signalled:
            return None
        return hook(unraisable)

    return unless_signalled


def stop_if_signalled() -> None:
    """Act on a signal that came and whose handler's exception was lost, as the handler acts: it raises."""
    if _signalled:
        signum, handler = _signalled[0]
        handler(signum, None)


def _interrupt_z3_on_signal(read_end: int) -> None:
    import z3

    while os.read(read_end, 1):
        # Interrupting a context that is not solving does nothing: the signal's handler stops the run anyway.
        z3.main_ctx().interrupt()
        for context in list(_contexts):
            context.interrupt()


def no_signal_wakeup() -> None:
    """In a forked worker: its signals must not wake the parent's watcher through the inherited pipe."""
    signal.set_wakeup_fd(-1)
