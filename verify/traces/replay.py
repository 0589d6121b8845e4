"""Re-executes a saved trace on the Python reference model and judges it with the property.

Every recorded state must be what the model computes: state 0 from the
trace's start (`KVVec::new()`, the scenario's setup, or an arbitrary state
that satisfies the type invariants), every later state from the operation
before it. The first difference is a TraceError naming the state and the
value. "Reproduces" then means the whole trace was recomputed and the property
fails at its last operation, where the trace says it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from models.binder import BinderStep, Deregister, Policy, Register, binder_step, with_faults
from models.catalogue import ModelSpec
from models.machine import Platform
from models.vec import Action, ShrinkTo, Step, VecState, step
from properties.base import KernelTest, Property, Scenario, StepProperty
from properties.binder import SequenceProperty
from verify.traces.trace import VARS, LoadedTrace, Trace, TraceError, from_itf
from verify.traces.trace_input import shown


@dataclass(frozen=True)
class Replayed:
    trace: Trace
    prop: Property | SequenceProperty
    reproduces: bool  # the property fails at the last operation, as the trace says


VecStep = Callable[[Platform, VecState, Action], Step]


class KernelSource(Protocol):
    """The functions of a model read from kernel source (verify.source.steps.ON_SOURCE, a layer above)."""

    def vec_step(self, model: ModelSpec) -> VecStep: ...
    def binder_policy(self, model: ModelSpec) -> Policy: ...


def replay(loaded: LoadedTrace, kernel_source: KernelSource | None = None) -> Replayed:
    """The trace recomputed and judged; a recorded value the model does not compute is a TraceError.

    A trace of a model read from kernel source replays on that file's functions, which `kernel_source` reads
    (trace_input has checked that the file is there with the content the trace names).
    """
    plat, prop = loaded.platform, loaded.prop
    if loaded.model.source is not None and kernel_source is None:
        raise _refuse(loaded, "#meta.model", f"{loaded.model.name} is read from kernel source, which this replay"
                      " cannot read")
    vec_step = _vec_step(loaded, kernel_source)
    initial = _start(loaded, vec_step)
    steps: tuple[Step | BinderStep, ...]
    if isinstance(prop, SequenceProperty):
        steps = tuple(_replay_binder(loaded, initial, kernel_source))
    else:
        steps = (_replay_call(loaded, prop, initial, vec_step),)
    trace = Trace(
        prop.id, loaded.model.name, plat.elem_size, plat.page_size, initial, steps, tuple(sorted(loaded.faults)),
        loaded.policy, loaded.setup, loaded.meta["cycle_from"], loaded.start, loaded.model.policy_rule,
        _kernel_source(loaded.model),
    )
    _compare(loaded, trace)
    if isinstance(prop, SequenceProperty):
        binder_steps = [s for s in steps if isinstance(s, BinderStep)]
        reproduces = prop.violated(plat, binder_steps, trace.cycle_from or 0)
    else:
        assert isinstance(steps[0], Step)
        reproduces = not prop.py(plat, steps[0])
    return Replayed(trace, prop, reproduces)


def _vec_step(loaded: LoadedTrace, kernel_source: KernelSource | None) -> VecStep:
    """The Vec step the trace's model takes: the model's own with its faults, or a kvec.rs's functions (a
    context.rs's model runs the list's operations inside its binder steps)."""
    if loaded.model.source is not None and loaded.model.policy is None and kernel_source is not None:
        return kernel_source.vec_step(loaded.model)
    return lambda plat, state, action: step(plat, state, action, loaded.faults)


def _kernel_source(model: ModelSpec) -> tuple[str, str] | None:
    return None if model.source is None or model.source_sha256 is None else (model.source, model.source_sha256)


def _refuse(loaded: LoadedTrace, where: str, why: str) -> TraceError:
    return TraceError(f"{shown(loaded.origin)}: {where}: {why}")


def _start(loaded: LoadedTrace, vec_step: VecStep) -> VecState:
    """State 0 as the trace's start says it is: checked, never taken on trust."""
    if loaded.start == "new":
        return VecState()
    if loaded.start == "setup":
        prop = loaded.prop
        # verify.traces.trace_input allows "setup" for scenarios and kernel tests only
        assert isinstance(prop, Scenario | KernelTest)
        if isinstance(prop, KernelTest):
            # The calls before the failing one, in the test's order, each with its own allocator outcome.
            for index, action in enumerate(loaded.setup):
                if index >= len(prop.calls) or not _is_call(prop, action, index):
                    raise _refuse(loaded, f"#meta.setup/{index}", f"not call {index} of {prop.test}")
        elif loaded.setup != prop.setup:
            raise _refuse(loaded, "#meta.setup", f"not the setup of {prop.id}")
        return _rebuild(loaded, vec_step)
    broken = loaded.initial.invariant_violations(loaded.platform)
    if broken:
        raise _refuse(loaded, "states/0", f"the start state breaks the type invariant '{broken[0]}'")
    return loaded.initial


def _rebuild(loaded: LoadedTrace, vec_step: VecStep) -> VecState:
    """The state a scenario's setup builds from `Vec::new()`; each setup operation must succeed."""
    state = VecState()
    for index, action in enumerate(loaded.setup):
        taken = vec_step(loaded.platform, state, action)
        if not taken.ok:
            raise _refuse(loaded, f"#meta.setup/{index}", "fails on the Python model")
        state = taken.post
    return state


def _replay_binder(loaded: LoadedTrace, initial: VecState, kernel_source: KernelSource | None) -> list[BinderStep]:
    """The operations from state 0 under the trace's policy (a source model's: its context.rs's)."""
    assert loaded.policy is not None  # verify.traces.trace_input: a binder model's policy
    if loaded.model.source is not None and kernel_source is not None:
        policy = kernel_source.binder_policy(loaded.model)
    else:
        policy = with_faults(loaded.model.binder_policy(), loaded.faults)
    state, steps = initial, []
    for index, action in enumerate(loaded.actions, start=1):
        if not isinstance(action, (Register, Deregister)):
            raise _refuse(loaded, f"states/{index}/action", f"{type(action).__name__} is not a binder operation")
        taken = binder_step(loaded.platform, policy, state, action)
        steps.append(taken)
        state = taken.post
    return steps


def _replay_call(loaded: LoadedTrace, prop: Property, initial: VecState, vec_step: VecStep) -> Step:
    """The single call the property is about (shrink_to, or reserve for `reserve.*`), from state 0."""
    if len(loaded.actions) != 1:
        raise _refuse(loaded, "states", f"{prop.id} is about one call; the trace has {len(loaded.actions)}")
    action = loaded.actions[0]
    if isinstance(prop, KernelTest):
        index = len(loaded.setup)
        if index >= len(prop.calls) or not _is_call(prop, action, index):
            raise _refuse(loaded, "states/1/action", f"not call {index} of {prop.test}")
        assert not isinstance(action, (Register, Deregister))  # a call of the test is a Vec operation
        return vec_step(loaded.platform, initial, action)
    operation = prop.operation if isinstance(prop, StepProperty) else ShrinkTo
    if not isinstance(action, operation):
        why = f"{prop.id} is about {operation.__name__}, not {type(action).__name__}"
        raise _refuse(loaded, "states/1/action", why)
    if isinstance(prop, Scenario) and isinstance(action, ShrinkTo) and action.min_capacity != prop.min_capacity:
        raise _refuse(loaded, "states/1/action/min_capacity", f"{prop.id} calls shrink_to({prop.min_capacity})")
    return vec_step(loaded.platform, initial, action)


def _is_call(prop: KernelTest, action: object, index: int) -> bool:
    """Whether `action` is the test's call `index`, with any allocator outcome."""
    try:
        return prop.index_of(action) == index
    except ValueError:
        return False


def _compare(loaded: LoadedTrace, replayed: Trace) -> None:
    """Every recorded value equals the replay's; the first that does not is refused."""
    computed = from_itf(replayed.to_itf()).states
    for index, (recorded, state) in enumerate(zip(loaded.states, computed, strict=True)):
        for var in VARS:
            mine, theirs = _plain(recorded[var]), _plain(state.values[var])
            if mine != theirs:
                source = f"the start ({loaded.start}) has" if index == 0 else "the replay computes"
                why = f"recorded {_short(mine)}, but {source} {_short(theirs)}"
                raise _refuse(loaded, f"states/{index}/{var}", why)


def _plain(value: Any) -> Any:
    """A decoded ITF value as plain dicts and lists, so that key order does not matter."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
