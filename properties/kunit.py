"""The series' KUnit tests as merged (the `rust_kvec` suite of rust/kernel/alloc/kvec.rs), and three scenarios.

The four merged tests (v7.1: `test_kvvec_shrink_to`, `..._empty`, `..._no_op`,
`..._respects_min_capacity`) are programs of calls from `KVVec::<u8>::new()`:
`with_capacity` (a reserve from new), pushes and `shrink_to`, each unwrapped.
None forces a buffer kind: `with_capacity(4 * PAGE_SIZE)` is a kmalloc object,
or a vmalloc area when that kmalloc fails. Every call's allocator outcome is a
free variable, so one proof covers every buffer kind and every outcome of both
shrinks of the two-step test. Three checks per test:

- `kunit.TEST`: every assertion of the test holds wherever the test reaches it;
- `kunit.TEST.shrink-unwrap-ok`: every `shrink_to(..).unwrap()` the test reaches
  gets Ok (a panic there fails the test without the kernel code being wrong);
- `kunit.TEST.errs-exactly`: each call the test reaches returns Err exactly
  under the stated allocator outcomes: the exact panic condition of every unwrap.

Element values: the tests push the bytes 1, 2, 3 (or 0..10); the model pushes
the identities of the same numbers, and an element read is its identity.

The `scenario.*` checks are this project's own, sized in pages: a forced
vmalloc buffer and a claim the merged tests do not make (physical memory drops,
the page rule refuses, the capacity really drops). The setup runs on the Python
model with stated allocator outcomes; Z3 ranges over every outcome of the final
shrink_to. PAGE_SIZE follows the run's platform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from models.allocator import Kind, Outcome
from models.allocator_z3 import SymOutcome
from models.catalogue import ModelSpec
from models.machine import Platform
from models.vec import Push, Reserve, ShrinkTo, Step
from models.vec_z3 import SymPlatform, SymStep, SymVec
from properties.base import Call, KernelTest, Scenario, conjunction
from properties.shrink import physical_z3

VMALLOC_ONLY = Outcome(kmalloc_ok=False, vmalloc_ok=True)


def _u8(model: ModelSpec) -> bool:
    return model.size_min == model.size_max == 1


def _panics(model: ModelSpec) -> bool:
    """The merged code's shrink_to can fail under the tests; the generic one never does (shrink.never-fails)."""
    return _u8(model) and not model.code.generic


def _u8_merged(model: ModelSpec) -> bool:
    """An Err table is the merged code's and KVmalloc's: the generic shrink_to and KVec, VVec fail elsewhere."""
    return _u8(model) and not model.code.generic


def pushes(count: int, first: int = 0) -> tuple[Push, ...]:
    """Push identities first..first+count-1: the tests fill the vector element by element."""
    return tuple(Push(i) for i in range(first, first + count))


# --- what an assertion or a condition reads, in both encodings ---------------------------

# A fact about one call: its Z3 form over the encoded step, its Python form over the replayed step.
Z3Fact = Callable[[SymPlatform, SymStep], Any]
PyFact = Callable[[Platform, Step], bool]


@dataclass(frozen=True)
class Fact:
    text: str
    z3: Z3Fact
    py: PyFact


def _cap_z3(sp: SymPlatform, v: SymVec) -> Any:
    return sp.capacity(v)


def capacity_at_least(n: int, text: str) -> Fact:
    return Fact(text, lambda sp, st: z3.UGE(_cap_z3(sp, st.post), n), lambda p, s: s.post.capacity(p) >= n)


def length_is(n: int, text: str) -> Fact:
    return Fact(text, lambda sp, st: st.post.len == n, lambda p, s: s.post.len == n)


def elements_are(values: Sequence[int], text: str) -> Fact:
    """`v[i] == values[i]` for each i (the test reads each index below len, which the length fact pins)."""

    def z3_form(sp: SymPlatform, st: SymStep) -> Any:
        return conjunction([st.post.elems[i] == value for i, value in enumerate(values)])

    def py_form(p: Platform, s: Step) -> bool:
        return s.post.elems.count >= len(values) and all(s.post.elems.at(i) == v for i, v in enumerate(values))

    return Fact(text, z3_form, py_form)


CAPACITY_DROPPED = Fact(
    "capacity < initial_capacity (the capacity before the call)",
    lambda sp, st: z3.ULT(_cap_z3(sp, st.post), _cap_z3(sp, st.pre)),
    lambda p, s: s.post.capacity(p) < s.pre.capacity(p),
)
CAPACITY_UNCHANGED = Fact(
    "capacity == capacity_before",
    lambda sp, st: _cap_z3(sp, st.post) == _cap_z3(sp, st.pre),
    lambda p, s: s.post.capacity(p) == s.pre.capacity(p),
)
CAPACITY_HOLDS_LEN = Fact(
    "capacity >= len",
    lambda sp, st: z3.UGE(_cap_z3(sp, st.post), st.post.len),
    lambda p, s: s.post.capacity(p) >= s.post.len,
)

# Allocator outcomes of one call, and the buffer a call starts from.
NEVER = Fact("never", lambda sp, st: z3.BoolVal(False), lambda p, s: False)


def err_when(text: str, kmalloc_fails: bool, vmalloc_fails: bool, on_vmalloc: bool) -> Callable[[Any], Fact]:
    """Err exactly when: (the buffer is a vmalloc area, if `on_vmalloc`) and the named attempts fail.

    The Z3 form needs the call's symbolic outcome, so it is built per call (`outcome` below).
    """

    def build(outcome: Any) -> Fact:
        def z3_form(sp: SymPlatform, st: SymStep) -> Any:
            parts = [st.pre.buf.live, st.pre.buf.vmalloc] if on_vmalloc else []
            parts += [z3.Not(outcome.kmalloc_ok)] if kmalloc_fails else []
            parts += [z3.Not(outcome.vmalloc_ok)] if vmalloc_fails else []
            return conjunction(parts)

        def py_form(p: Platform, s: Step) -> bool:
            o = s.action.outcome if isinstance(s.action, (ShrinkTo, Reserve, Push)) else Outcome()
            kind_ok = not on_vmalloc or (s.pre.buf is not None and s.pre.buf.kind is Kind.VMALLOC)
            return kind_ok and (not kmalloc_fails or not o.kmalloc_ok) and (not vmalloc_fails or not o.vmalloc_ok)

        return Fact(text, z3_form, py_form)

    return build


def vmalloc_exactly_when_kmalloc_fails(outcome: Any) -> Fact:
    """On Ok, the buffer `with_capacity` made is a vmalloc area exactly when its kmalloc failed."""

    def z3_form(sp: SymPlatform, st: SymStep) -> Any:
        return z3.Implies(st.ok, z3.And(st.post.buf.live, st.post.buf.vmalloc == z3.Not(outcome.kmalloc_ok)))

    def py_form(p: Platform, s: Step) -> bool:
        assert isinstance(s.action, Reserve)
        vmalloc = s.post.buf is not None and s.post.buf.kind is Kind.VMALLOC
        return not s.ok or (s.post.buf is not None and vmalloc == (not s.action.outcome.kmalloc_ok))

    return Fact("on Ok the buffer is a vmalloc area exactly when kmalloc failed", z3_form, py_form)


def kmalloc_buffer(outcome: Any) -> Fact:
    """On Ok, the buffer is a kmalloc object (kvmalloc up to a page has no vmalloc fallback)."""
    return Fact(
        "on Ok the buffer is a kmalloc object",
        lambda sp, st: z3.Implies(st.ok, z3.And(st.post.buf.live, z3.Not(st.post.buf.vmalloc))),
        lambda p, s: not s.ok or (s.post.buf is not None and s.post.buf.kind is Kind.KMALLOC),
    )


# --- the merged tests -------------------------------------------------------------------

# How a call may end, as a builder from the call's symbolic outcome to facts:
# Err exactly when `err`, and on Ok also each of `also`.
Exact = tuple[Callable[[Any], Fact], tuple[Callable[[Any], Fact], ...]]
NO_ERR: Exact = (lambda outcome: NEVER, ())


@dataclass(frozen=True)
class TestCall:
    call: Call
    asserts: tuple[Fact, ...] = ()  # what the test asserts after this call returns Ok
    exact: Exact = NO_ERR  # when this call returns Err, exactly


@dataclass(frozen=True)
class MergedTest:
    name: str  # the check's name: kunit.NAME
    function: str  # the kernel test's function name
    summary: str
    calls: tuple[TestCall, ...]
    errs: str  # the panic condition of its shrink_to unwraps, in words
    page: int  # PAGE_SIZE of the run


def merged_tests(page: int) -> tuple[MergedTest, ...]:
    """The four tests of v7.1's `rust_kvec` suite, call for call (kvec.rs, `mod tests`)."""
    with_capacity_4p = TestCall(
        Reserve(4 * page),
        exact=(
            err_when("kmalloc and vmalloc both fail", True, True, False),
            (vmalloc_exactly_when_kmalloc_fails,),
        ),
    )
    return (
        MergedTest(
            "shrink",
            "test_kvvec_shrink_to",
            "with_capacity(4 * PAGE_SIZE), push 1, 2, 3, shrink_to(PAGE_SIZE), shrink_to(0)",
            (
                with_capacity_4p,
                TestCall(Push(1)),
                TestCall(Push(2)),
                TestCall(Push(3), (capacity_at_least(4 * page, "initial_capacity >= 4 * PAGE_SIZE"),)),
                TestCall(
                    ShrinkTo(page),
                    (
                        CAPACITY_DROPPED,
                        capacity_at_least(page, "capacity >= PAGE_SIZE"),
                        length_is(3, "len == 3"),
                        elements_are((1, 2, 3), "v[0..3] == [1, 2, 3]"),
                    ),
                    (err_when("the buffer is a vmalloc area and kmalloc fails", True, False, True), ()),
                ),
                TestCall(
                    ShrinkTo(0),
                    (CAPACITY_HOLDS_LEN, length_is(3, "len == 3"), elements_are((1, 2, 3), "v[0..3] == [1, 2, 3]")),
                ),
            ),
            "shrink_to(PAGE_SIZE) returns Err exactly when the buffer is a vmalloc area (with_capacity's kmalloc"
            " failed) and its own kmalloc fails: the vmalloc path's new one-page buffer is kvmalloc(PAGE_SIZE),"
            " which has no vmalloc fallback; shrink_to(0) never returns Err",
            page,
        ),
        MergedTest(
            "empty",
            "test_kvvec_shrink_to_empty",
            "with_capacity(4 * PAGE_SIZE), shrink_to(0)",
            (
                TestCall(with_capacity_4p.call, (length_is(0, "is_empty()"),), with_capacity_4p.exact),
                TestCall(
                    ShrinkTo(0),
                    (
                        Fact(
                            "capacity == 0",
                            lambda sp, st: _cap_z3(sp, st.post) == 0,
                            lambda p, s: s.post.capacity(p) == 0,
                        ),
                        length_is(0, "is_empty()"),
                    ),
                ),
            ),
            "never: shrink_to(0) of an empty vector frees the buffer on both paths without allocating",
            page,
        ),
        MergedTest(
            "no-op",
            "test_kvvec_shrink_to_no_op",
            "with_capacity(PAGE_SIZE), push 1, shrink_to(capacity_before + 100)",
            (
                TestCall(
                    Reserve(page),
                    exact=(err_when("kmalloc fails", True, False, False), (kmalloc_buffer,)),
                ),
                # capacity_before is the capacity with_capacity gave: PAGE_SIZE exactly (the layout it
                # asked for), which the check proves here, so the fixed argument below is the test's.
                TestCall(Push(1), (capacity_at_least(page, "capacity_before >= PAGE_SIZE"), _capacity_is(page))),
                TestCall(
                    ShrinkTo(page + 100),
                    (CAPACITY_UNCHANGED, length_is(1, "len == 1"), elements_are((1,), "v[0] == 1")),
                ),
            ),
            "never: min_capacity is above the capacity, so shrink_to returns at once",
            page,
        ),
        MergedTest(
            "respects-min-capacity",
            "test_kvvec_shrink_to_respects_min_capacity",
            "with_capacity(4 * PAGE_SIZE), push 0..10, shrink_to(2 * PAGE_SIZE)",
            (
                with_capacity_4p,
                *(TestCall(p) for p in pushes(10)),
                TestCall(
                    ShrinkTo(2 * page),
                    (
                        capacity_at_least(2 * page, "capacity >= 2 * PAGE_SIZE"),
                        length_is(10, "len == 10"),
                        elements_are(tuple(range(10)), "v[i] == i for i in 0..10"),
                    ),
                    (err_when("the buffer is a vmalloc area and kmalloc and vmalloc both fail", True, True, True), ()),
                ),
            ),
            "shrink_to(2 * PAGE_SIZE) returns Err exactly when the buffer is a vmalloc area (with_capacity's"
            " kmalloc failed) and both the kmalloc and the vmalloc attempt of its kvmalloc(2 * PAGE_SIZE) fail",
            page,
        ),
    )


def _capacity_is(n: int) -> Fact:
    return Fact(
        f"capacity_before == {n}",
        lambda sp, st: _cap_z3(sp, st.post) == n,
        lambda p, s: s.post.capacity(p) == n,
    )


def test_programs(page: int) -> tuple[KernelTest, ...]:
    """Three checks per merged test: its assertions, its shrink_to unwraps, the exact Err condition of each call."""
    programs: list[KernelTest] = []
    for t in merged_tests(page):
        calls = tuple(c.call for c in t.calls)
        programs += [_assertions(t, calls), _shrink_unwraps(t, calls), _errs_exactly(t, calls)]
    return tuple(programs)


def _by_action(t: MergedTest, s: Step) -> TestCall:
    for c in t.calls:
        if type(c.call) is type(s.action) and _same_call(c.call, s.action):
            return c
    raise ValueError(f"{s.action} is not a call of {t.function}")


def _same_call(a: Any, b: Any) -> bool:
    return bool(vars(a) | {"outcome": None} == vars(b) | {"outcome": None})


def _reaches_end(sp: SymPlatform, steps: Sequence[SymStep]) -> Any:
    return conjunction([st.ok for st in steps])


def _assertions(t: MergedTest, calls: tuple[Call, ...]) -> KernelTest:
    def z3_claim(sp: SymPlatform, index: int, st: SymStep, outcome: SymOutcome) -> Any:
        asserts = t.calls[index].asserts
        return z3.Implies(st.ok, conjunction([a.z3(sp, st) for a in asserts]))

    def py_claim(p: Platform, s: Step) -> bool:
        return not s.ok or all(a.py(p, s) for a in _by_action(t, s).asserts)

    texts = "; ".join(
        f"after {_call_text(c.call, t.page)}: {', '.join(a.text for a in c.asserts)}" for c in t.calls if c.asserts
    )
    return KernelTest(
        f"kunit.{t.name}",
        f"{t.function} ({t.summary}): every assertion holds wherever the test reaches it, for every allocator"
        f" outcome of every call (the buffer a kmalloc object or a vmalloc area): {texts}",
        t.function,
        calls,
        z3_claim,
        py_claim,
        applies=_u8,
        premise=_reaches_end,
        premise_text="the test runs to its end (every call returns Ok)",
    )


def _shrink_unwraps(t: MergedTest, calls: tuple[Call, ...]) -> KernelTest:
    def z3_claim(sp: SymPlatform, index: int, st: SymStep, outcome: SymOutcome) -> Any:
        return st.ok if isinstance(t.calls[index].call, ShrinkTo) else z3.BoolVal(True)

    def py_claim(p: Platform, s: Step) -> bool:
        return s.ok or not isinstance(s.action, ShrinkTo)

    panics = t.name in ("shrink", "respects-min-capacity")
    return KernelTest(
        f"kunit.{t.name}.shrink-unwrap-ok",
        f"{t.function}: every shrink_to(..).unwrap() the test reaches gets Ok, for every allocator outcome",
        t.function,
        calls,
        z3_claim,
        py_claim,
        applies=_u8,
        expect_violated=_panics if panics else _never_violated,
        explanation=f"The test panics at an unwrap without the kernel code being wrong: {t.errs}."
        if panics else "",
    )


def _never_violated(model: ModelSpec) -> bool:
    return False


def _errs_exactly(t: MergedTest, calls: tuple[Call, ...]) -> KernelTest:
    def facts(index: int, outcome: Any) -> tuple[Fact, tuple[Fact, ...]]:
        err, also = t.calls[index].exact
        return err(outcome), tuple(f(outcome) for f in also)

    def z3_claim(sp: SymPlatform, index: int, st: SymStep, outcome: SymOutcome) -> Any:
        err, also = facts(index, outcome)
        return conjunction([z3.Not(st.ok) == err.z3(sp, st), *[f.z3(sp, st) for f in also]])

    def py_claim(p: Platform, s: Step) -> bool:
        index = t.calls.index(_by_action(t, s))
        err, also = facts(index, None)
        return (not s.ok) == err.py(p, s) and all(f.py(p, s) for f in also)

    conditions = "; ".join(
        f"{_call_text(c.call, t.page)}: Err exactly when {c.exact[0](None).text}"
        for c in t.calls
        if c.exact is not NO_ERR
    )
    return KernelTest(
        f"kunit.{t.name}.errs-exactly",
        f"{t.function}: every call the test reaches returns Err exactly under these allocator outcomes, and"
        f" never otherwise: {conditions or 'none'}; every other call never returns Err. When its shrink_to"
        f" unwraps panic: {t.errs}",
        t.function,
        calls,
        z3_claim,
        py_claim,
        applies=_u8_merged,
    )


def _call_text(call: Call, page: int) -> str:
    if isinstance(call, Reserve):
        return f"with_capacity({_pages(call.additional, page)})"
    if isinstance(call, Push):
        return f"push({call.identity})"
    return f"shrink_to({_pages(call.min_capacity, page)})"


def _pages(n: int, page: int) -> str:
    """A count as the tests write it: `PAGE_SIZE`, `4 * PAGE_SIZE`, `PAGE_SIZE + 100`, or a number."""
    k, r = divmod(n, page)
    if k == 0:
        return str(n)
    text = "PAGE_SIZE" if k == 1 else f"{k} * PAGE_SIZE"
    return text if r == 0 else f"{text} + {r}"


# --- the project's own scenarios -----------------------------------------------------------

RETURNS_OK = "the final shrink_to returns Ok"


def returns_ok(sp: SymPlatform, st: SymStep) -> Any:
    return st.ok


def scenarios(page: int) -> tuple[Scenario, ...]:
    """Forced vmalloc buffers and claims the merged tests do not make."""

    def frees_pages_z3(sp: SymPlatform, st: SymStep) -> Any:
        cap = sp.capacity(st.post)
        freed = z3.ULT(physical_z3(st.post), physical_z3(st.pre))
        return z3.Implies(st.ok, z3.And(z3.ULT(cap, 4 * page), z3.UGE(cap, st.pre.len), freed))

    def frees_pages_py(plat: Platform, s: Step) -> bool:
        cap = s.post.capacity(plat)
        return not s.ok or (s.pre.len <= cap < 4 * page and s.post.physical() < s.pre.physical())

    def noop_z3(sp: SymPlatform, st: SymStep) -> Any:
        return z3.And(st.ok, sp.capacity(st.post) == 3 * page, st.effects.ncalls() == 0)

    def noop_py(plat: Platform, s: Step) -> bool:
        return s.ok and s.post.capacity(plat) == 3 * page and not s.effects.calls

    def min_cap_z3(sp: SymPlatform, st: SymStep) -> Any:
        cap = sp.capacity(st.post)
        return z3.Implies(st.ok, z3.And(z3.UGE(cap, 2 * page), z3.ULT(cap, 4 * page)))

    def min_cap_py(plat: Platform, s: Step) -> bool:
        cap = s.post.capacity(plat)
        return not s.ok or 2 * page <= cap < 4 * page

    return (
        Scenario(
            "scenario.vmalloc-shrink-frees-pages",
            "a 4-page vmalloc buffer holding one page of u8, shrink_to(0): on Ok, len <= capacity"
            " < 4 pages and physical memory drops",
            (Reserve(4 * page, VMALLOC_ONLY), *pushes(page)),
            0,
            frees_pages_z3,
            frees_pages_py,
            applies=_u8,
            premise=returns_ok,
            premise_text=RETURNS_OK,
        ),
        Scenario(
            "scenario.no-page-freed-noop",
            "a 3-page vmalloc buffer holding 2 pages + 1 byte, shrink_to(0): frees no page, so Ok,"
            " no allocator call, capacity unchanged",
            (Reserve(3 * page, VMALLOC_ONLY), *pushes(2 * page + 1)),
            0,
            noop_z3,
            noop_py,
            applies=_u8,
        ),
        Scenario(
            "scenario.vmalloc-min-capacity-shrinks",
            "a 4-page vmalloc buffer holding 10 bytes, shrink_to(2 pages): on Ok, 2 pages <= capacity < 4 pages",
            (Reserve(4 * page, VMALLOC_ONLY), *pushes(10)),
            2 * page,
            min_cap_z3,
            min_cap_py,
            applies=_u8,
            premise=returns_ok,
            premise_text=RETURNS_OK,
        ),
    )
