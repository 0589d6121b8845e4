"""A signal stops a solver at work at once, and a signal whose exception is lost still stops the run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
import z3

from verify.interrupts import solvers_interruptible, stop_if_signalled
from verify.search.confirm import check_smt2
from verify.search.least import least_values

# Two 31-bit primes and a 32-bit one: finding the factors of their product is far beyond a few seconds.
PRODUCT = 2147483629 * 2147483587 * 4294967291
# Work a stopped query may still do: its solver notices the stop between steps, well within this.
STOP_CPU_SECONDS = 3.0


def _sigint_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def _factoring_query() -> list[z3.BoolRef]:
    x, y = z3.BitVecs("x y", 64)
    return [z3.ZeroExt(64, x) * z3.ZeroExt(64, y) == PRODUCT, z3.UGT(x, 1), z3.UGT(y, 1)]


def _cpu() -> float:
    return time.process_time()


def test_ctrl_c_stops_a_z3_query_at_once() -> None:
    solver = z3.Solver()
    solver.add(*_factoring_query())
    with solvers_interruptible():
        timer = _sigint_after(0.3)
        start = _cpu()
        with pytest.raises(KeyboardInterrupt):
            solver.check()
            stop_if_signalled()
        timer.join()
    assert _cpu() - start < STOP_CPU_SECONDS


def test_ctrl_c_stops_a_bitwuzla_query_at_once() -> None:
    solver = z3.Solver()
    solver.add(*_factoring_query())
    query = solver.to_smt2()
    with solvers_interruptible():
        timer = _sigint_after(0.3)
        start = _cpu()
        with pytest.raises(KeyboardInterrupt):
            check_smt2("bitwuzla", query, 60_000)
        timer.join()
    assert _cpu() - start < STOP_CPU_SECONDS


def test_ctrl_c_stops_bitwuzlas_search_for_least_values_at_once() -> None:
    query = _factoring_query()
    with solvers_interruptible():
        timer = _sigint_after(0.3)
        start = _cpu()
        with pytest.raises(KeyboardInterrupt):
            least_values(query, [z3.BitVec("x", 64)], 60_000)
        timer.join()
    assert _cpu() - start < STOP_CPU_SECONDS


class _SignalledInAFinalizer:
    """Python ignores (and prints) an exception raised in `__del__`: a Ctrl-C handled there is lost."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # bytecodes, at which the handler runs and raises
            pass


def test_a_signal_lost_in_a_finalizer_still_stops_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    with solvers_interruptible():
        _SignalledInAFinalizer()  # dropped at once: its finalizer runs, and swallows the KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            stop_if_signalled()
    assert capsys.readouterr().err == ""  # the lost exception is not printed as "Exception ignored"
    stop_if_signalled()  # after the block, nothing is left over


def test_without_a_signal_nothing_stops_and_z3_is_as_it_was() -> None:
    before = z3.get_param("ctrl_c")
    with solvers_interruptible():
        assert z3.get_param("ctrl_c") == "false"
        stop_if_signalled()
        solver = z3.Solver()
        solver.add(z3.BitVec("x", 8) == 3)
        assert solver.check() == z3.sat
    assert z3.get_param("ctrl_c") == before


class _CtrlCWhileLoading:
    """A module finder that is "interrupted" when the command line's module loads."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "verify.cli":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_modules_load_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from verify.__main__ import run

    monkeypatch.delitem(sys.modules, "verify.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_CtrlCWhileLoading(), *sys.meta_path])
    assert run() == 130
    assert capsys.readouterr().err == "verify: interrupted\n"
