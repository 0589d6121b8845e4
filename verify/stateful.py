"""Stateful cross-check: Hypothesis drives the Python models through long random sequences.

At every step the Z3 encoding must accept the Python transition and allow no
other (verify/crosscheck.py), and the Z3 type invariants must agree with the
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

from models.allocator import ALL_OUTCOMES, Outcome
from models.binder import ELEM_SIZE, POLICIES, BinderAction, BinderStep, Deregister, Policy, Register, binder_step
from models.catalogue import ModelSpec
from models.machine import ISIZE_MAX, USIZE_MAX, Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Truncate, VecState, step
from properties.binder import JUDGED_PREDICATES
from properties.shrink import PROPERTIES
from verify.crosscheck import (
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


def outcome_name(o: Outcome) -> str:
    return f"{'km' if o.kmalloc_ok else 'no-km'}/{'vm' if o.vmalloc_ok else 'no-vm'}"


class Coverage:
    """What the machines have exercised: steps and (operation, outcome) pairs; reset per run."""

    steps = 0
    seen: ClassVar[Counter[str]] = Counter()

    @classmethod
    def reset(cls) -> None:
        cls.steps = 0
        cls.seen = Counter()

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

    @initialize(elem_size=st.sampled_from(ELEM_SIZES))
    def choose_size(self, elem_size: int) -> None:
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

    @initialize(policy=st.sampled_from(POLICIES), page_size=st.sampled_from(BINDER_PAGE_SIZES))
    def choose_policy(self, policy: Policy, page_size: int) -> None:
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

    @invariant()
    def type_invariants_hold(self) -> None:
        assert self.v.invariant_violations(self.plat) == [], self.v.invariant_violations(self.plat)
        check_invariants(self.plat, self.v)


MACHINES: tuple[type[RuleBasedStateMachine], ...] = (VecMachine, BinderMachine)


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
