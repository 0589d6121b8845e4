"""Counterexample traces in ITF, the Informal Trace Format of Apalache and Quint.

A trace is the state the violation starts from (after any setup), then one
state per operation. Each state carries the vector's observable values (len,
capacity, backend, layout, physical memory, pages, elements) and the action
that led to it with its allocator outcome and effects. The `#meta` record names
the property, the model, the parameters, the solver and the step where the
property fails; with it, the trace replays on the Python reference model.

Files are named after their content, written through a temporary file and a
hard link, and never overwrite a different file. Reading and writing go
through itf-py, so other ITF tools read the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import itf_py
from itf_py.itf import ImmutableList

from models.allocator import Allocation, Effects, Kind, Outcome
from models.binder import BinderAction, BinderStep, Deregister, Register
from models.catalogue import ModelSpec, machine_for
from models.elements import Elements
from models.machine import Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate, VecState
from properties.base import Property
from properties.binder import SequenceProperty
from verify import __version__
from verify.search.solver import z3_version
from verify.traces.trace_input import FORMAT, STARTS, TraceError, check_meta, check_schema, parse_json, read_text, shown

SEED = 0  # the solver's random seed (verify.search.solver fixes it)
VARS = ["action", "outcome", "result", "len", "capacity", "backend", "layout_len", "layout_bytes",
        "buffer_id", "next_id", "requested", "physical", "pages", "elements", "effects", "overflow"]


@dataclass(frozen=True)
class Trace:
    """A violation: operations from an initial state, on the Python model, and where it fails."""

    property_id: str
    model: str
    elem_size: int
    page_size: int
    initial: VecState
    steps: tuple[Step | BinderStep, ...]
    faults: tuple[str, ...] = ()
    policy: str | None = None  # binder traces: the shrink policy
    setup: tuple[Action, ...] = ()  # operations that built `initial` (KUnit scenarios)
    cycle_from: int | None = None  # for a cycle: the index of its first operation
    # What state 0 is: "new" (`KVVec::new()`), "setup" (what `setup` builds from
    # `Vec::new()`) or "arbitrary" (any state satisfying the type invariants).
    start: str = "new"
    # A binder trace of a policy the user defined (models.catalogue.policy_model): its rule, so the file
    # alone says what it replays; None for the built-in policies, whose traces do not carry it.
    policy_rule: str | None = None
    # A trace of a model read from kernel source (`verify run --source`): the file's path and SHA-256.
    kernel_source: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"a trace starts {', '.join(STARTS)}, not {self.start!r}")

    @property
    def platform(self) -> Platform:
        return machine_for(self.model, self.elem_size, self.page_size)

    @property
    def actions(self) -> tuple[Action | BinderAction, ...]:
        return tuple(s.action for s in self.steps)

    @property
    def failing_step(self) -> int:
        """The state (1-based, after that many operations) at which the property fails."""
        return len(self.steps)

    # --- the ITF document ---------------------------------------------------

    def to_itf(self) -> dict[str, Any]:
        plat = self.platform
        meta = {
            "format": FORMAT,
            "source": "verify",
            "description": f"counterexample to {self.property_id} on {self.model}",
            "property": self.property_id,
            "model": self.model,
            "variant": self._variant(plat),
            "parameters": {"elem_size": self.elem_size, "page_size": self.page_size},
            "start": self.start,
            "setup": [_setup_json(a) for a in self.setup],
            "solver": z3_version(),  # a counterexample is Z3's alone; --confirm re-checks proofs
            "tool": f"verify {__version__}",
            "seed": SEED,
            "failing_step": self.failing_step,
            "cycle_from": self.cycle_from,
        }
        if self.kernel_source is not None:
            meta["kernel_source"] = {"path": self.kernel_source[0], "sha256": self.kernel_source[1]}
        states = [_state(0, self.initial, plat, None)]
        states += [_state(i, s.post, plat, s) for i, s in enumerate(self.steps, start=1)]
        trace = itf_py.Trace(meta=meta, params=[], vars=VARS, states=states, loop=self.cycle_from)
        return itf_py.trace_to_json(trace)

    def _variant(self, plat: Platform) -> dict[str, Any]:
        """Faults and policy (with its rule, for a policy the user defined); the kernel-code choices too, for a
        model that is not the merged code."""
        variant: dict[str, Any] = {"faults": list(self.faults), "policy": self.policy}
        if self.policy_rule is not None:
            variant["rule"] = self.policy_rule
        choices = plat.code.choices()
        if choices:
            variant["choices"] = choices
        return variant

    def text(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        # Computed once: saving a trace names the file after it and writes it. The trace is frozen, so
        # the text cannot go stale.
        return json.dumps(self.to_itf(), indent=1, sort_keys=True) + "\n"

    def file_name(self) -> str:
        """`PROPERTY--MODEL--HASH.itf.json`: only letters, digits, '.', '_' and '-', at most 200 characters."""
        digest = hashlib.sha256(self.text().encode()).hexdigest()[:12]
        return f"{_file_part(self.property_id, 60)}--{_file_part(self.model, 100)}--{digest}.itf.json"

    # --- one line for the report ---------------------------------------------

    def one_line(self) -> str:
        plat = self.platform
        if self.policy is not None:
            line = _binder_line(plat, self.steps, self.cycle_from)
            if self.start == "arbitrary":
                s0 = self.initial
                origin = f"len={s0.len} cap={s0.capacity(plat)} {describe_buffer(s0.buf)}"
                return f"from an arbitrary state satisfying the type invariants ({origin}), {line}"
            return line
        s = self.steps[-1]
        assert isinstance(s, Step)
        a = s.action
        argument = a.additional if isinstance(a, Reserve) else getattr(a, "min_capacity", "")
        what = f"{type(a).__name__.lower()}({argument})"
        outcome = getattr(a, "outcome", None)
        return (
            f"T={self.elem_size}B len={s.pre.len} cap={s.pre.capacity(plat)} {describe_buffer(s.pre.buf)}; {what}"
            f"{'' if outcome is None else ' with ' + outcome.describe()} -> {'Ok' if s.ok else 'Err'},"
            f" cap={s.post.capacity(plat)} {describe_buffer(s.post.buf)}"
        )


def _file_part(name: str, budget: int) -> str:
    """A name safe in a file name: other characters become '_'; a long one keeps its head and a digest."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"
    if len(safe) <= budget:
        return safe
    return f"{safe[: budget - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def describe_buffer(buf: Allocation | None) -> str:
    return "dangling" if buf is None else f"{backend(buf)} {buf.requested}B ({buf.physical}B physical)"


# A vmalloc area mapped huge (Allocation.huge, set only by models of linux-next's vrealloc).
HUGE_BACKEND = "vmalloc-huge"


def backend(buf: Allocation) -> str:
    """The recorded kind of an allocation: kmalloc, vmalloc, or vmalloc-huge."""
    return HUGE_BACKEND if buf.huge else buf.kind.value


def _binder_op(s: BinderStep, plat: Platform) -> str:
    name = "register" if isinstance(s.action, Register) else "deregister"
    notes = []
    if s.pre.capacity(plat) != s.post.capacity(plat):
        notes.append(f"cap {s.pre.capacity(plat)}->{s.post.capacity(plat)}")
    if s.pre.buf != s.post.buf and s.post.buf is not None:
        notes.append(f"{s.post.buf.kind.value} {s.post.buf.physical}B")
    if not s.ok:
        notes.append("Err")
    if s.shrink_attempted and not s.steps[-1].ok:
        notes.append("shrink Err")
    outcome = s.action.outcome
    if not (outcome.kmalloc_ok and outcome.vmalloc_ok) and (s.allocator_calls or not s.ok):
        notes.append(outcome.describe())
    return name + (f" [{', '.join(notes)}]" if notes else "")


def _binder_line(plat: Platform, steps: Sequence[Step | BinderStep], cycle_from: int | None) -> str:
    """Runs of plain operations collapse to `register x4`; notable ones show what changed."""
    parts: list[str] = []
    for s in steps:
        assert isinstance(s, BinderStep)
        text = _binder_op(s, plat)
        if parts and parts[-1].split(" x")[0] == text and "[" not in text:
            count = int(parts[-1].split(" x")[1]) if " x" in parts[-1] else 1
            parts[-1] = f"{text} x{count + 1}"
        else:
            parts.append(text)
    cycle = f" (cycle from operation {cycle_from + 1})" if cycle_from else ""
    return f"PAGE_SIZE {plat.page_size}: " + ", ".join(parts) + cycle


# --- values ------------------------------------------------------------------


def action_record(a: Action | BinderAction | None) -> SimpleNamespace:
    if a is None:
        return SimpleNamespace(op="init")
    fields = {k: v for k, v in vars(a).items() if k != "outcome"}
    return SimpleNamespace(op=type(a).__name__, **fields)


def _outcome_record(a: Action | BinderAction | None) -> SimpleNamespace:
    outcome = getattr(a, "outcome", None)
    if outcome is None:
        return SimpleNamespace(kmalloc_ok=True, vmalloc_ok=True, relevant=False)
    return SimpleNamespace(kmalloc_ok=outcome.kmalloc_ok, vmalloc_ok=outcome.vmalloc_ok, relevant=True)


def _effects_record(fx: Effects) -> SimpleNamespace:
    def alloc(a: Allocation | None) -> Any:
        if a is None:
            return []
        return [SimpleNamespace(id=a.id, kind=backend(a), requested=a.requested, physical=a.physical)]

    return SimpleNamespace(
        calls=[SimpleNamespace(fn=c.fn.name.lower(), new_bytes=c.new_bytes, old_bytes=c.old_bytes) for c in fx.calls],
        allocated=alloc(fx.allocated),
        copied=[] if fx.copied is None else [SimpleNamespace(**vars(fx.copied))],
        freed=[] if fx.freed is None else [SimpleNamespace(**vars(fx.freed))],
        copy_before_free=fx.copy_before_free,
    )


def _state(index: int, v: VecState, plat: Platform, s: Step | BinderStep | None) -> itf_py.State:
    buf = v.buf
    inner: list[Step] = [] if s is None else list(s.steps) if isinstance(s, BinderStep) else [s]
    values = {
        "action": action_record(None if s is None else s.action),
        "outcome": _outcome_record(None if s is None else s.action),
        "result": "-" if s is None else ("Ok" if s.ok else "Err"),
        "len": v.len,
        "capacity": v.capacity(plat),
        "backend": "none" if buf is None else backend(buf),
        "layout_len": v.layout_len,
        "layout_bytes": v.layout_bytes(plat),
        "buffer_id": 0 if buf is None else buf.id,
        "next_id": v.next_id,
        "requested": 0 if buf is None else buf.requested,
        "physical": v.physical(),
        "pages": -(-v.physical() // plat.page_size),
        "elements": [tuple(run) for run in v.elems.runs],
        "effects": [_effects_record(step.effects) for step in inner],
        "overflow": any(step.overflow for step in inner),
    }
    return itf_py.State(meta={"index": index}, values=values)


# --- reading a trace back -----------------------------------------------------


@dataclass(frozen=True)
class LoadedTrace:
    """A trace file checked against the schema and the catalogue; verify.traces.replay checks its states."""

    meta: dict[str, Any]
    platform: Platform
    faults: frozenset[str]
    policy: str | None
    setup: tuple[Action, ...]
    initial: VecState  # state 0 as recorded
    actions: tuple[Action | BinderAction, ...]
    states: tuple[dict[str, Any], ...]  # the recorded values, for display and for comparing with the replay
    model: ModelSpec
    prop: Property | SequenceProperty
    start: str
    origin: str  # names the file in errors


VEC_ACTIONS: dict[str, type] = {c.__name__: c for c in (ShrinkTo, Reserve, Push, Pop, Truncate, Clear, Retain)}
BINDER_ACTIONS: dict[str, type] = {"Register": Register, "Deregister": Deregister}
WITH_OUTCOME = ("ShrinkTo", "Reserve", "Push", "Register", "Deregister")


def _action(record: Any, outcome: Any) -> Action | BinderAction:
    """An operation from its (schema-checked) record; the outcome is its allocator answer, if it takes one."""
    fields = dict(record._asdict())
    op = fields.pop("op")
    if op in WITH_OUTCOME:
        fields["outcome"] = Outcome(outcome.kmalloc_ok, outcome.vmalloc_ok)
    action: Action | BinderAction = {**VEC_ACTIONS, **BINDER_ACTIONS}[op](**fields)
    return action


def recorded_state(values: dict[str, Any]) -> VecState:
    """The Vec state a recorded state stands for (the derived values are checked by the replay)."""
    buf = None
    if values["backend"] != "none":
        huge = values["backend"] == HUGE_BACKEND
        kind = Kind.VMALLOC if huge else Kind(values["backend"])
        buf = Allocation(values["buffer_id"], kind, values["requested"], values["physical"], huge)
    elems = Elements(tuple((first, count) for first, count in values["elements"]))
    return VecState(values["len"], values["layout_len"], buf, elems, values["next_id"])


def load(path: Path) -> LoadedTrace:
    """Read an ITF trace written by verify; any problem is a TraceError with one clear line."""
    return load_text(read_text(path), str(path))


def load_text(text: str, origin: str) -> LoadedTrace:
    """Read an ITF trace from its text; `origin` names it in errors."""
    name = shown(origin)
    raw = parse_json(text, origin)
    check_schema(raw, origin)
    subject = check_meta(raw["#meta"], origin)
    trace = from_itf(raw)
    meta = trace.meta
    states = tuple(dict(s.values) for s in trace.states)
    for index, state in enumerate(trace.states):
        if state.meta["index"] != index:
            raise TraceError(f"{name}: states/{index}: #meta.index is {state.meta['index']}")
        op = states[index]["action"].op
        if (op == "init") != (index == 0):
            where = "state 0 is the start: its action is 'init'" if index == 0 else "'init' begins a trace only"
            raise TraceError(f"{name}: states/{index}/action/op: {where}")
    actions = tuple(_action(s["action"], s["outcome"]) for s in states[1:])
    if meta["failing_step"] != len(actions):
        raise TraceError(f"{name}: #meta.failing_step: {meta['failing_step']}, but the trace has {len(actions)}"
                         " operations (a trace ends where the property fails)")
    cycle_from = meta["cycle_from"]
    if cycle_from is not None and cycle_from >= len(actions):
        raise TraceError(f"{name}: #meta.cycle_from: {cycle_from} is not one of the {len(actions)} operations")
    if trace.loop != cycle_from:
        raise TraceError(f"{name}: loop: {trace.loop}, but #meta.cycle_from is {cycle_from}")
    params = meta["parameters"]
    plat = subject.model.machine(params["elem_size"], params["page_size"])
    setup = tuple(_setup_action(a) for a in meta["setup"])
    variant = meta["variant"]
    return LoadedTrace(
        meta, plat, frozenset(variant["faults"]), variant["policy"], setup, recorded_state(states[0]), actions,
        states, subject.model, subject.prop, subject.start, origin,
    )


# --- ITF to Python values ----------------------------------------------------------------------
# itf_py.trace_from_json defines a new namedtuple class for every record it reads (hundreds in a trace),
# most of the time of reading one. These functions read a trace to the same values (records as
# namedtuples, lists as itf-py's ImmutableList, #bigint as int, #tup as tuple) with one class for each set
# of field names; what a verify trace never holds (#set, #map, tagged unions) itf-py still reads itself.
# The reference: itf_py/itf.py, value_from_json and trace_from_json (https://github.com/informalsystems/itf-py).

_ITF_ONLY = ("#set", "#map", "#unserializable")


@lru_cache(maxsize=256)
def _record_type(fields: tuple[str, ...]) -> Any:
    return namedtuple("Rec", fields)  # fields known only at run time, as in itf-py


def value_from_itf(value: Any) -> Any:
    """A JSON value of an ITF state as itf_py.value_from_json decodes it."""
    if isinstance(value, list):
        return ImmutableList([value_from_itf(v) for v in value])
    if not isinstance(value, dict):
        return value
    if "#bigint" in value:
        return int(value["#bigint"])
    if "#tup" in value:
        return tuple(value_from_itf(v) for v in value["#tup"])
    if any(key in value for key in _ITF_ONLY) or value.keys() == {"tag", "value"}:
        return itf_py.value_from_json(value)
    return _record_type(tuple(value))(*(value_from_itf(v) for v in value.values()))


def from_itf(data: dict[str, Any]) -> itf_py.Trace:
    """An ITF document as itf_py.trace_from_json reads it."""
    states = [
        itf_py.State(meta=s.get("#meta", {}), values={k: value_from_itf(v) for k, v in s.items() if k != "#meta"})
        for s in data["states"]
    ]
    return itf_py.Trace(meta=data.get("#meta", {}), params=data.get("params", []), vars=data["vars"], states=states,
                        loop=data.get("loop"))


def _setup_json(a: Action) -> dict[str, Any]:
    d: dict[str, Any] = {"op": type(a).__name__}
    for key, value in vars(a).items():
        if isinstance(value, Outcome):
            value = {"kmalloc_ok": value.kmalloc_ok, "vmalloc_ok": value.vmalloc_ok}
        d[key] = value
    return d


def _setup_action(d: dict[str, Any]) -> Action:
    """A setup operation from its (schema-checked) JSON."""
    fields = dict(d)
    cls = VEC_ACTIONS[fields.pop("op")]
    if "outcome" in fields:
        fields["outcome"] = Outcome(**fields["outcome"])
    action: Action = cls(**fields)
    return action


def save(trace: Trace, directory: Path) -> tuple[Path, bool]:
    """Write atomically under a content-derived name; returns (path, newly written?)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / trace.file_name()
    text = trace.text()
    if path.exists():
        if path.read_text() == text:
            return path, False
        raise TraceError(f"{path} exists with different content; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # link() fails if the name appeared meanwhile: nothing is ever overwritten.
        os.link(tmp, path)
    except FileExistsError:
        if path.read_text() != text:
            raise TraceError(f"{path} appeared with different content; refusing to overwrite it") from None
        return path, False
    finally:
        os.unlink(tmp)
    return path, True
