"""The interpreter's arithmetic and control flow, on both back ends, for constructs the fixtures do not use."""

from __future__ import annotations

from pathlib import Path

import pytest
import z3

from models.allocator import Outcome
from models.machine import USIZE_MAX, Platform
from models.vec import ShrinkTo, VecState
from models.vec_z3 import SymPlatform, lift_outcome, lift_state
from verify.source import concrete, symbolic
from verify.source.conformance import shrink_to_function
from verify.source.locate import Function

# A function whose post-state layout records what it computed: min, `/`, `%`, checked_sub and a match
# on an Option, `&&`, `||`, a mutable local assigned in a nested block.
CALCULATOR = """
impl<T> Vec<T, KVmalloc> {
    pub fn shrink_to(&mut self, n: usize, flags: Flags) -> Result<(), AllocError> {
        let a = core::cmp::min(n, 100) / 3 + n % 7;
        let b = match n.checked_sub(10) {
            Some(x) => x,
            None => 0,
        };
        let mut c = 1;
        if (a > 5 && b == 0) || n == 1000 {
            c = 2;
        }
        self.layout = unsafe { ArrayLayout::<T>::new_unchecked(a * 1000 + b * 10 + c) };
        if n == 0 {
            return Err(AllocError);
        }
        Ok(())
    }
}
"""


def expected(n: int) -> tuple[int, bool]:
    a = min(n, 100) // 3 + n % 7
    b = n - 10 if n >= 10 else 0
    c = 2 if (a > 5 and b == 0) or n == 1000 else 1
    return a * 1000 + b * 10 + c, n != 0


@pytest.fixture(scope="module")
def calculator(tmp_path_factory: pytest.TempPathFactory) -> Function:
    path = tmp_path_factory.mktemp("source") / "calc.rs"
    path.write_text(CALCULATOR)
    return shrink_to_function(path)


@pytest.mark.parametrize("n", [0, 3, 9, 10, 17, 20, 99, 1000, 12345])
def test_both_back_ends_compute_rusts_values(calculator: Function, n: int) -> None:
    plat = Platform(1)
    layout, ok = expected(n)
    taken, _ = concrete.transition(calculator, plat, VecState(), ShrinkTo(n, Outcome()))
    assert (taken.post.layout_len, taken.ok, taken.overflow) == (layout, ok, False)
    sym = symbolic.transition(calculator, SymPlatform(plat), lift_state(VecState()), z3.BitVecVal(n, 64),
                              lift_outcome(Outcome()))
    assert z3.simplify(sym.post.layout_len).as_long() == layout
    assert z3.is_true(z3.simplify(sym.ok)) == ok and z3.is_false(z3.simplify(sym.overflow))


WRAPPING = """
impl<T> Vec<T, KVmalloc> {
    pub fn shrink_to(&mut self, n: usize, flags: Flags) -> Result<(), AllocError> {
        let d = 10 / n;
        self.layout = ArrayLayout::empty();
        let w = n - 1;
        Ok(())
    }
}
"""


@pytest.mark.parametrize(("n", "wraps"), [(0, True), (1, False), (USIZE_MAX, False)])
def test_a_wrap_around_or_a_division_by_zero_is_noted(tmp_path: Path, n: int, wraps: bool) -> None:
    path = tmp_path / "wrap.rs"
    path.write_text(WRAPPING)
    fn = shrink_to_function(path)
    taken, _ = concrete.transition(fn, Platform(1), VecState(), ShrinkTo(n, Outcome()))
    assert taken.overflow is wraps
    sym = symbolic.transition(fn, SymPlatform(Platform(1)), lift_state(VecState()), z3.BitVecVal(n, 64),
                              lift_outcome(Outcome()))
    assert z3.is_true(z3.simplify(sym.overflow)) is wraps
