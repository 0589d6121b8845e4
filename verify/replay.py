"""Re-executes a saved trace on the Python reference model and judges it with the property."""

from __future__ import annotations

from dataclasses import dataclass

from models.binder import BinderStep, Deregister, Register, binder_step, policy_named, with_faults
from models.machine import Platform
from models.vec import Action, Step, VecState, step
from properties.base import Property
from properties.binder import SequenceProperty
from properties.registry import all_properties
from verify.trace import LoadedTrace, Trace, TraceError


@dataclass(frozen=True)
class Replayed:
    trace: Trace
    prop: Property | SequenceProperty
    reproduces: bool  # the property fails at the last operation, as the trace says


def property_named(prop_id: str, page_size: int) -> Property | SequenceProperty:
    for prop in all_properties(page_size):
        if prop.id == prop_id:
            return prop
    raise TraceError(f"the trace names an unknown property {prop_id!r}")


def replay(loaded: LoadedTrace) -> Replayed:
    meta, plat = loaded.meta, loaded.platform
    prop = property_named(meta["property"], plat.page_size)
    cycle_from = meta.get("cycle_from")
    steps: tuple[Step | BinderStep, ...]
    if isinstance(prop, SequenceProperty):
        binder_steps = _replay_binder(loaded, prop)
        steps = tuple(binder_steps)
        reproduces = prop.violated(plat, binder_steps, cycle_from or 0)
    else:
        taken = _replay_call(loaded, prop)
        steps = (taken,)
        reproduces = not prop.py(plat, taken)
    trace = Trace(
        prop.id, meta["model"], plat.elem_size, plat.page_size, VecState() if loaded.policy else loaded.initial,
        steps, tuple(sorted(loaded.faults)), loaded.policy, loaded.setup, cycle_from,
    )
    return Replayed(trace, prop, reproduces)


def _replay_binder(loaded: LoadedTrace, prop: SequenceProperty) -> list[BinderStep]:
    """The operations from `KVVec::new()` under the trace's policy."""
    if loaded.policy is None:
        raise TraceError(f"{prop.id} is a binder property, but the trace names no policy")
    try:
        policy = with_faults(policy_named(loaded.policy), loaded.faults)
    except KeyError:
        raise TraceError(f"the trace names an unknown policy {loaded.policy!r}") from None
    state, steps = VecState(), []
    for action in loaded.actions:
        if not isinstance(action, (Register, Deregister)):
            raise TraceError(f"{type(action).__name__} is not a binder operation")
        taken = binder_step(loaded.platform, policy, state, action)
        steps.append(taken)
        state = taken.post
    return steps


def _replay_call(loaded: LoadedTrace, prop: Property) -> Step:
    """The single call, from the recorded pre-state or from the scenario's setup."""
    if len(loaded.actions) != 1:
        raise TraceError(f"{prop.id} is a single-call property; the trace has {len(loaded.actions)} operations")
    action = loaded.actions[0]
    if isinstance(action, (Register, Deregister)):
        raise TraceError(f"{prop.id} is a single-call property; the trace holds a binder operation")
    initial = _rebuild(loaded.platform, loaded.setup, loaded.faults) if loaded.setup else loaded.initial
    return step(loaded.platform, initial, action, loaded.faults)


def _rebuild(plat: Platform, setup: tuple[Action, ...], faults: frozenset[str]) -> VecState:
    """The state a scenario's setup builds from `Vec::new()`."""
    state = VecState()
    for a in setup:
        state = step(plat, state, a, faults).post
    return state

