"""Reference model of binder's `all_procs` (drivers/android/binder/context.rs) and its shrink policies.

`all_procs` is a `KVVec<Arc<Process>>`: 8-byte elements. Registering a process
pushes it (an allocation failure is returned, the list unchanged).
Deregistering removes it with `retain`, then applies the shrink policy and
ignores shrink_to's error. The Z3 counterpart is binder_z3.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import z3

from models import vec
from models.allocator import Outcome
from models.faults import BINDER_FAULTS, BINDER_OPERATION_FAULTS
from models.machine import Platform
from models.policy_lang import compile_policy, split
from models.vec import Push, Retain, ShrinkTo, Step, VecState

ELEM_SIZE = 8  # size_of::<Arc<Process>>()
SUCCESS = Outcome()


@dataclass(frozen=True)
class Policy:
    """When to shrink after a deregistration, and to what: once in Python, once in Z3.

    `define` makes one from a definition in the policy language (models/policy_lang.py).
    """

    name: str
    rule: str  # the definition, `TRIGGER => TARGET`
    trigger: Callable[[int, int], bool]
    target: Callable[[int, int], int]
    trigger_z3: Callable[[Any, Any], Any]
    target_z3: Callable[[Any, Any], Any]
    # Seeded faults carried into every operation (models/faults.py): Vec and allocator faults, passed to
    # the Vec steps, and faults in the operations themselves, which binder_step and binder_z3 apply alike;
    # empty for the kernel's code.
    faults: frozenset[str] = frozenset()
    # The arithmetic fault of applying the rule to (len, cap), if any (a wrap or a division by zero), and
    # the condition that there is one; a rule written as Python functions has none.
    arithmetic_fault: Callable[[int, int], str | None] = lambda n, cap: None
    arithmetic_fault_z3: Callable[[Any, Any], Any] = lambda n, cap: z3.BoolVal(False)
    # The operations read from a context.rs (verify/source/steps.py) instead of the rule above: binder_step
    # and binder_z3's register and deregister hand every operation to it.
    source: SourceOperations | None = None

    @staticmethod
    def define(name: str, rule: str, faults: frozenset[str] = frozenset()) -> Policy:
        """The policy `rule` (`TRIGGER => TARGET`) under `name`; a PolicyError if the rule does not parse."""
        c = compile_policy(rule)
        return Policy(name, rule, c.trigger, c.target, c.trigger_z3, c.target_z3, faults, c.fault, c.fault_z3)


class SourceOperations(Protocol):
    """binder's registration and deregistration as a kernel source makes them, in both encodings."""

    def step(self, plat: Platform, state: VecState, action: BinderAction) -> BinderStep: ...
    def register_z3(self, sp: Any, pre: Any, pid: Any, outcome: Any, prefix: str) -> Any: ...
    def deregister_z3(
        self, sp: Any, pre: Any, pid: Any, outcome: Any, prefix: str, remove_one: bool, at: Any
    ) -> Any: ...


# The series' policies and two for comparison (SEMANTICS.md, "Rust binder").
POLICIES: tuple[Policy, ...] = (
    # v6 (merged): shrink to twice the length once usage falls below a quarter.
    Policy.define("v6", "len < cap/4 => len*2"),
    # v4: the same trigger, halving the capacity.
    Policy.define("v4", "len < cap/4 => cap/2"),
    # A naive policy for comparison: shrink to fit as soon as half is unused.
    Policy.define("naive", "len < cap/2 => len"),
    # Before the series: the list never shrinks.
    Policy.define("never", "false => cap"),
)


def policy_named(name: str) -> Policy:
    for policy in POLICIES:
        if policy.name == name:
            return policy
    raise KeyError(name)


@dataclass(frozen=True)
class Register:
    pid: int
    outcome: Outcome = SUCCESS


@dataclass(frozen=True)
class Deregister:
    """Remove process `pid`; `outcome` drives the shrink_to the policy may call."""

    pid: int
    outcome: Outcome = SUCCESS


BinderAction = Register | Deregister


@dataclass(frozen=True)
class BinderStep:
    pre: VecState
    action: BinderAction
    post: VecState
    ok: bool  # a registration's result; a deregistration always succeeds
    steps: tuple[Step, ...]  # the Vec operations it made
    # A deregistration whose policy rule wrapped or divided by zero (Policy.arithmetic_fault): what did.
    arithmetic_fault: str | None = None

    @property
    def allocator_calls(self) -> int:
        return sum(len(s.effects.calls) for s in self.steps)

    @property
    def reallocates(self) -> bool:
        """The operation changed the buffer: a new layout or a different allocation.

        A failed allocation changes nothing and does not count.
        """
        old, new = self.pre.buf, self.post.buf
        moved = (old is None) != (new is None) or (old is not None and new is not None and old.id != new.id)
        return self.post.layout_len != self.pre.layout_len or moved

    @property
    def shrank(self) -> bool:
        return self.post.layout_len < self.pre.layout_len

    @property
    def shrink_attempted(self) -> bool:
        return any(isinstance(s.action, ShrinkTo) for s in self.steps)


def binder_step(plat: Platform, policy: Policy, state: VecState, action: BinderAction) -> BinderStep:
    """One registration or deregistration, as context.rs does it."""
    assert plat.elem_size == ELEM_SIZE
    if policy.source is not None:
        return policy.source.step(plat, state, action)
    if isinstance(action, Register):
        pushed = vec.step(plat, state, Push(action.pid, action.outcome), policy.faults)
        post = pushed.post
        if not pushed.ok and "binder-failed-register-pops" in policy.faults and state.len:
            post = replace(post, len=state.len - 1, elems=state.elems.prefix(state.len - 1))
        return BinderStep(state, action, post, pushed.ok, (pushed,))
    removed = vec.step(plat, state, Retain(action.pid), policy.faults)
    after = removed.post
    if "binder-dereg-removes-last" in policy.faults and after.len < state.len:
        after = replace(after, elems=state.elems.prefix(after.len))
    fault = policy.arithmetic_fault(after.len, after.capacity(plat))
    if not policy.trigger(after.len, after.capacity(plat)):
        return BinderStep(state, action, after, True, (removed,), fault)
    target = policy.target(after.len, after.capacity(plat))
    shrunk = vec.step(plat, after, ShrinkTo(target, action.outcome), policy.faults)
    post = shrunk.post
    if not shrunk.ok and "binder-shrink-err-adopted" in policy.faults:
        post = replace(post, layout_len=target)
    # shrink_to's error is ignored: the list stays as retain left it.
    return BinderStep(state, action, post, True, (removed, shrunk), fault)


def with_faults(policy: Policy, faults: frozenset[str]) -> Policy:
    """The policy with the seeded faults (models/faults.py): a binder fault rewrites its rule, so both encodings
    change at once; the others ride along in `faults`, for the Vec steps of every operation."""
    trigger, target = split(policy.rule)
    if "binder-shrink-dropped" in faults:
        trigger = "false"
    if "binder-trigger-inverted" in faults:
        trigger = "len >= cap/4"
    if "binder-trigger-cap-8" in faults:
        trigger = "len < cap/8"
    if "binder-target-cap-half" in faults:
        target = "cap/2"
    if "binder-target-len-8" in faults:
        target = "len*8"
    if "binder-target-len-minus-one" in faults:
        target = "len - 1"
    # The policy's own rule faults change trigger and target; every other fault rides along in `faults`.
    carried = frozenset(f for f in faults if f not in BINDER_FAULTS or f in BINDER_OPERATION_FAULTS)
    rule = f"{trigger} => {target}"
    if (split(policy.rule), carried) == ((trigger, target), policy.faults):
        return policy
    return Policy.define(policy.name, rule, carried)
