"""Stateful cross-check: Hypothesis drives the Python models through long random sequences.

At every step the Z3 encoding must accept the Python transition and allow no
other (verify/check/crosscheck.py), and the Z3 type invariants must agree with the
Python model's on the state reached. On every shrink_to each single-call
property of properties/shrink.py must get the same verdict from its Python
judge and its Z3 predicate. For binder, so must each single-operation
predicate, and BMC's unrolling over a deregistration (and over one followed by
a registration) must compute the same run and give each sequence predicate BMC
checks its Python judge's verdict. One machine drives a KVVec of a drawn
element size, one drives binder's all_procs under a drawn policy; allocator
outcomes are drawn from every combination at every allocating step.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from models.allocator import ALL_OUTCOMES, Kind, Outcome
from models.binder import ELEM_SIZE, POLICIES, BinderAction, BinderStep, Deregister, Policy, Register, binder_step
from models.catalogue import ModelSpec
from models.machine import INT_MAX, ISIZE_MAX, USIZE_MAX, Platform, kmalloc_size_classes
from models.vec import SUCCESS, Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Truncate, VecState, step
from properties.binder import JUDGED_PREDICATES
from properties.shrink import PROPERTIES
from verify.check.branches import BINDER_POINTS, VEC_POINTS, binder_points, vec_points
from verify.check.crosscheck import (
    check_binder_transition,
    check_invariants,
    check_properties,
    check_transition,
    check_unrolling,
)

ELEM_SIZES = (0, 1, 8, 24, 4096)
# Small pages for binder, so that a few registrations cross pages and reach vmalloc.
BINDER_PAGE_SIZES = (64, 4096)

outcomes = st.sampled_from(ALL_OUTCOMES)
# Counts whose bytes cross a page (or KMALLOC_MAX_SIZE for a big T), small counts, and overflow edges.
additionals = st.one_of(
    st.integers(0, 8),
    st.integers(1000, 20000),
    st.sampled_from([ISIZE_MAX // 8, ISIZE_MAX, USIZE_MAX]),
)


EDGES = ("size class", "page", "KMALLOC_MAX_SIZE", "INT_MAX")
VMALLOC_TARGETS = (
    "a page multiple", "one element past a page multiple", "within its last page", "a page or less", "zero"
)


def edge_bytes(plat: Platform, edge: str) -> list[int]:
    """The byte counts of an allocator edge: every slab size class, one page, KMALLOC_MAX_SIZE or INT_MAX."""
    if edge == "size class":
        return list(kmalloc_size_classes(plat.page_size))
    return [{"page": plat.page_size, "KMALLOC_MAX_SIZE": plat.kmalloc_max_size, "INT_MAX": INT_MAX}[edge]]


def page_targets(plat: Platform, capacity: int) -> list[int]:
    """shrink_to arguments whose target bytes are a page multiple below the capacity, or one element past one."""
    size, page = max(plat.elem_size, 1), plat.page_size
    multiples = range(page, capacity * size, page)
    return sorted({m // size for m in multiples} | {m // size + 1 for m in multiples} | {capacity, capacity - 1})


def outcome_name(o: Outcome) -> str:
    return f"{'km' if o.kmalloc_ok else 'no-km'}/{'vm' if o.vmalloc_ok else 'no-vm'}"


class Coverage:
    """What the machines have exercised: steps and (operation, outcome) pairs; reset per run."""

    steps = 0
    seen: ClassVar[Counter[str]] = Counter()
    reached: ClassVar[Counter[str]] = Counter()  # branches and boundaries (verify/check/branches.py)

    @classmethod
    def reset(cls) -> None:
        cls.steps = 0
        cls.seen = Counter()
        cls.reached = Counter()

    @classmethod
    def reach(cls, points: set[str]) -> None:
        cls.reached.update(points)

    @classmethod
    def unreached(cls, machines: tuple[type[RuleBasedStateMachine], ...]) -> list[str]:
        """The branches and boundaries of these machines' models that no step reached."""
        vec = any(issubclass(m, VecMachine) for m in machines)
        binder = any(issubclass(m, BinderMachine) for m in machines)
        expected = (*(VEC_POINTS if vec else ()), *(BINDER_POINTS if binder else ()))
        return [p for p in expected if not cls.reached[p]]

    @classmethod
    def note(cls, what: str) -> None:
        cls.steps += 1
        cls.seen[what] += 1


class VecMachine(RuleBasedStateMachine):
    """A KVVec<T> of one drawn element size, cross-checked step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.plat = Platform(0)
        self.v = VecState()
        self.fresh = 100  # push identities: fresh and distinct, so retain drops exactly one element
        self.props = PROPERTIES

    elem_sizes: ClassVar[tuple[int, ...]] = ELEM_SIZES  # drawn from; one_choice_each() makes one machine per size

    @initialize(data=st.data())
    def choose_size(self, data: st.DataObject) -> None:
        elem_size = data.draw(st.sampled_from(self.elem_sizes), label="elem_size")
        self.plat = Platform(elem_size)
        model = ModelSpec("crosscheck", "", elem_size, elem_size)
        self.props = tuple(p for p in PROPERTIES if p.applies(model))

    def apply(self, action: Action, what: str) -> None:
        s = step(self.plat, self.v, action)
        check_transition(self.plat, s)
        # Each single-call property on the calls it is about; push's allocator effects are reserve(1)'s.
        operation = Reserve if isinstance(action, Push) else type(action)
        about = tuple(p for p in self.props if p.operation is operation)
        if about:
            check_properties(self.plat, about, s)
        Coverage.note(f"vec {what}")
        Coverage.reach(vec_points(self.plat, s))
        self.v = s.post

    @rule(outcome=outcomes)
    def push(self, outcome: Outcome) -> None:
        self.fresh += 1
        self.apply(Push(self.fresh, outcome), f"push {outcome_name(outcome)}")

    @rule(additional=additionals, outcome=outcomes)
    def reserve(self, additional: int, outcome: Outcome) -> None:
        self.apply(Reserve(additional, outcome), f"reserve {outcome_name(outcome)}")

    @rule(data=st.data(), outcome=outcomes)
    def shrink_to(self, data: st.DataObject, outcome: Outcome) -> None:
        # Mostly below the capacity, so that something happens; sometimes at or above it, or huge.
        min_capacity = data.draw(
            st.one_of(st.integers(0, self.v.len), st.integers(0, self.v.layout_len + 40), st.just(USIZE_MAX)),
            label="min_capacity",
        )
        self.apply(ShrinkTo(min_capacity, outcome), f"shrink_to {outcome_name(outcome)}")

    # Steering to the branches and boundaries (verify/check/branches.py): each rule builds the
    # buffer a branch needs and then takes it, with a drawn allocator outcome.
    def fresh_buffer(self, count: int, outcome: Outcome, elements: int = 0) -> None:
        """Drop the buffer (clear, shrink_to(0)), then reserve exactly `count` elements and push a few."""
        self.apply(Clear(), "clear")
        self.apply(ShrinkTo(0), f"shrink_to {outcome_name(SUCCESS)}")
        self.apply(Reserve(count, outcome), f"reserve {outcome_name(outcome)}")
        for _ in range(elements):
            self.push(SUCCESS)

    @precondition(lambda self: self.plat.elem_size > 0)
    @rule(data=st.data(), outcome=outcomes, edge=st.sampled_from(EDGES), past=st.booleans())
    def request_at_edge(self, data: st.DataObject, outcome: Outcome, edge: str, past: bool) -> None:
        """A fresh request at an allocator edge, or one element past it."""
        at = data.draw(st.sampled_from(edge_bytes(self.plat, edge)), label="bytes")
        self.fresh_buffer(at // self.plat.elem_size + past, outcome)

    @rule(data=st.data(), outcome=outcomes, start=st.sampled_from(["kmalloc", "vmalloc", "as is"]))
    def grow(self, data: st.DataObject, outcome: Outcome, start: str) -> None:
        """Grow a kmalloc or a vmalloc buffer (or the vector as it is) by one more than its room, or overflow."""
        size, page = self.plat.elem_size, self.plat.page_size
        if size and start != "as is":
            pages = 1 if start == "kmalloc" else data.draw(st.integers(2, 4), label="pages")
            self.fresh_buffer(pages * page // size, Outcome(start == "kmalloc", True), elements=1)
        elif not self.v.len:
            self.push(SUCCESS)
        room = self.v.capacity(self.plat) - self.v.len
        additional = data.draw(st.sampled_from([room + 1, USIZE_MAX]), label="additional")
        self.apply(Reserve(min(additional, USIZE_MAX), outcome), f"reserve {outcome_name(outcome)}")

    @precondition(lambda self: self.v.capacity(self.plat) > self.v.len)
    @rule(data=st.data(), outcome=outcomes)
    def shrink_below_capacity(self, data: st.DataObject, outcome: Outcome) -> None:
        """shrink_to with something to shrink: to len, to zero, or to one below the capacity."""
        cap = self.v.capacity(self.plat)
        min_capacity = data.draw(st.sampled_from([self.v.len, 0, cap - 1]), label="min_capacity")
        self.apply(ShrinkTo(min_capacity, outcome), f"shrink_to {outcome_name(outcome)}")

    @precondition(lambda self: self.plat.elem_size > 0)
    @rule(data=st.data(), outcome=outcomes, to=st.sampled_from(VMALLOC_TARGETS))
    def shrink_vmalloc_buffer(self, data: st.DataObject, outcome: Outcome, to: str) -> None:
        """A fresh vmalloc buffer of three to five pages, shrunk to a page edge, within its last page, or lower."""
        size, page = self.plat.elem_size, self.plat.page_size
        pages = data.draw(st.integers(3, 5), label="pages")
        self.fresh_buffer(pages * page // size, Outcome(False, True), elements=1)
        multiple = data.draw(st.integers(2, pages - 1), label="multiple") * page
        min_capacity = {
            "a page multiple": multiple // size,
            "one element past a page multiple": multiple // size + 1,
            "within its last page": self.v.layout_len - 1,
            "a page or less": page // size,
            "zero": 0,
        }[to]
        self.apply(ShrinkTo(min_capacity, outcome), f"shrink_to {outcome_name(outcome)}")

    @rule()
    def pop(self) -> None:
        self.apply(Pop(), "pop")

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        self.apply(Truncate(data.draw(st.integers(0, self.v.len + 2), label="len")), "truncate")

    @rule()
    def clear(self) -> None:
        self.apply(Clear(), "clear")

    @precondition(lambda self: self.v.len > 0)
    @rule(data=st.data())
    def retain_present(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, self.v.len - 1), label="index")
        self.apply(Retain(self.v.elems.at(index)), "retain")

    @rule()
    def retain_absent(self) -> None:
        self.apply(Retain(self.fresh + 1), "retain")  # an identity not in the vector: nothing is dropped

    @invariant()
    def type_invariants_hold(self) -> None:
        # Also check_transition's precondition for the next step (see its docstring).
        assert self.v.invariant_violations(self.plat) == [], self.v.invariant_violations(self.plat)
        assert not self.v.elems.has_garbage()
        check_invariants(self.plat, self.v)  # the invariants the induction proofs assume, as Z3 states them


class BinderMachine(RuleBasedStateMachine):
    """binder's all_procs under one drawn shrink policy, cross-checked operation by operation."""

    def __init__(self) -> None:
        super().__init__()
        self.plat = Platform(ELEM_SIZE)
        self.policy: Policy = POLICIES[0]
        self.v = VecState()
        self.pid = 0
        self.window: tuple[BinderStep, ...] = ()

    # Drawn from; one_choice_each() makes one machine per policy and page size.
    policies: ClassVar[tuple[Policy, ...]] = POLICIES
    page_sizes: ClassVar[tuple[int, ...]] = BINDER_PAGE_SIZES

    @initialize(data=st.data())
    def choose_policy(self, data: st.DataObject) -> None:
        policy = data.draw(st.sampled_from(self.policies), label="policy")
        page_size = data.draw(st.sampled_from(self.page_sizes), label="page_size")
        self.policy, self.plat = policy, Platform(ELEM_SIZE, page_size)

    def apply(self, action: BinderAction, what: str) -> None:
        s = binder_step(self.plat, self.policy, self.v, action)
        check_binder_transition(self.plat, self.policy, s)
        # BMC's unrolling over a deregistration, and over a deregistration and the
        # registration after it: the pair regrow judges. A registration after a
        # registration is the step just checked, and every sequence predicate is false there.
        after = self.window[-1:] if isinstance(action, Register) else ()
        self.window = (*(w for w in after if isinstance(w.action, Deregister)), s)
        if isinstance(self.window[0].action, Deregister):
            check_unrolling(self.plat, self.policy, self.window[0].pre, tuple(w.action for w in self.window))
        shrank = " (shrink_to)" if s.shrink_attempted else ""
        Coverage.note(f"binder {what} {outcome_name(action.outcome)}{shrank}")
        Coverage.reach(binder_points(self.plat, self.policy, s))
        for p in JUDGED_PREDICATES:  # which sequence predicates were seen true, not only false
            if p.judge(self.plat, list(self.window), 0):
                Coverage.seen[f"binder {p.name}"] += 1
        self.v = s.post

    @rule(outcome=outcomes)
    def register(self, outcome: Outcome) -> None:
        self.pid += 1
        self.apply(Register(self.pid, outcome), "register")

    @precondition(lambda self: self.v.len > 0)
    @rule(data=st.data(), outcome=outcomes)
    def deregister(self, data: st.DataObject, outcome: Outcome) -> None:
        pid = self.v.elems.at(data.draw(st.integers(0, self.v.len - 1), label="index"))
        self.apply(Deregister(pid, outcome), "deregister")

    # Bursts, as when a service starts or stops many processes: one at a time, a list
    # seldom falls below a quarter of its capacity, and the policies shrink only then.
    @rule(data=st.data(), count=st.integers(2, 8))
    def register_several(self, data: st.DataObject, count: int) -> None:
        for _ in range(count):
            self.register(data.draw(outcomes, label="outcome"))

    @precondition(lambda self: self.v.len > 1)
    @rule(data=st.data())
    def deregister_several(self, data: st.DataObject) -> None:
        for _ in range(data.draw(st.integers(2, self.v.len), label="count")):
            self.deregister(data, data.draw(outcomes, label="outcome"))

    # Steering (verify/check/branches.py): deregister until the policy shrinks, if it does within
    # eight, passing the trigger's edge; the shrinking one gets a drawn outcome.
    @precondition(lambda self: self.v.len > 0)
    @rule(outcome=outcomes)
    def deregister_until_shrink(self, outcome: Outcome, within: int = 8) -> None:
        cap = self.v.capacity(self.plat)
        fires = [n for n in range(self.v.len - 1, max(self.v.len - 1 - within, -1), -1) if self.policy.trigger(n, cap)]
        if not fires:
            return
        while self.v.len - 1 > fires[0]:
            self.apply(Deregister(self.v.elems.at(0), SUCCESS), "deregister")
        self.apply(Deregister(self.v.elems.at(0), outcome), "deregister")

    # Only a vmalloc buffer's shrink allocates, and so can fail: grow the list into one
    # (kmalloc failing where it outgrows a page), then deregister until the policy shrinks,
    # with kmalloc failing: the replacement then fails, or vmalloc serves it.
    @precondition(lambda self: self.plat.page_size <= 64)
    @rule(outcome=st.sampled_from([o for o in ALL_OUTCOMES if not o.kmalloc_ok]))
    def shrink_a_vmalloc_list(self, outcome: Outcome) -> None:
        while self.v.buf is None or self.v.buf.kind is Kind.KMALLOC:
            cap = self.v.capacity(self.plat)
            outgrows = self.v.len == cap and max(2 * cap, cap + 1) * ELEM_SIZE > self.plat.page_size
            self.register(Outcome(False, True) if outgrows else SUCCESS)
        self.deregister_until_shrink(outcome, within=self.v.len)

    @invariant()
    def type_invariants_hold(self) -> None:
        assert self.v.invariant_violations(self.plat) == [], self.v.invariant_violations(self.plat)
        check_invariants(self.plat, self.v)


MACHINES: tuple[type[RuleBasedStateMachine], ...] = (VecMachine, BinderMachine)


def one_choice_each() -> tuple[type[RuleBasedStateMachine], ...]:
    """A Vec machine per element size, a binder machine per policy: each choice gets its share of programs.

    Drawn at random, a few programs may never meet a zero-sized T or a policy, and
    then never reach the branches only it has.
    """
    vec = [type(f"VecMachine{s}", (VecMachine,), {"elem_sizes": (s,)}) for s in ELEM_SIZES]
    # The small page: there a few processes reach vmalloc, the page rule and a failing shrink.
    small = min(BINDER_PAGE_SIZES)
    binder = [
        type(f"BinderMachine_{p.name}", (BinderMachine,), {"policies": (p,), "page_sizes": (small,)}) for p in POLICIES
    ]
    return (*vec, *binder)


def run(
    machine: type[RuleBasedStateMachine], examples: int, steps: int, seed: int | None = None, shrink: bool = True
) -> None:
    """Run a machine for `examples` programs of up to `steps` steps; raise on the first disagreement.

    Without a seed the run is derandomized (the same programs every time), as in the test suite.
    With `shrink`, a disagreement is first shrunk to a short program; binder
    steps are slow enough that this can take minutes.
    """
    factory = type(machine.__name__, (machine,), {})  # a fresh class, so a seed is not left on the shared one
    if seed is not None:
        factory._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]  # what @seed sets
    profile = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=seed is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=list(Phase) if shrink else [p for p in Phase if p is not Phase.shrink],
    )
    run_state_machine_as_test(factory, settings=profile)
