"""Counterexamples: concrete values of every variable and allocator outcome, as JSON.

A file is named after its content, so saving the same counterexample twice is
recognised as a duplicate and a different file is never overwritten. Writes go
through a temporary file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.allocator import Allocation, Effects, Kind, Outcome
from models.binder import BinderAction, BinderStep, Deregister, Register
from models.catalogue import ModelSpec
from models.elements import Elements
from models.machine import Platform
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate, VecState

FORMAT = "verify-counterexample/1"
TRACE_FORMAT = "verify-binder-trace/1"


class TraceError(Exception):
    """A counterexample file that cannot be read: the message is one line for the user."""


def state_json(v: VecState, plat: Platform) -> dict[str, Any]:
    buf = None
    if v.buf is not None:
        buf = {"id": v.buf.id, "kind": v.buf.kind.value, "requested": v.buf.requested, "physical": v.buf.physical}
    return {
        "len": v.len,
        "capacity": v.capacity(plat),
        "layout_len": v.layout_len,
        "layout_bytes": v.layout_bytes(plat),
        "buffer": buf,
        "elements": [list(run) for run in v.elems.runs],
        "next_id": v.next_id,
    }


def state_from_json(d: dict[str, Any]) -> VecState:
    b = d["buffer"]
    buf = None if b is None else Allocation(b["id"], Kind(b["kind"]), b["requested"], b["physical"])
    elems = Elements(tuple((int(first), int(count)) for first, count in d["elements"]))
    return VecState(d["len"], d["layout_len"], buf, elems, d["next_id"])


def action_json(a: Action | BinderAction) -> dict[str, Any]:
    d: dict[str, Any] = {"op": type(a).__name__}
    for key, value in vars(a).items():
        if isinstance(value, Outcome):
            value = {"kmalloc_ok": value.kmalloc_ok, "vmalloc_ok": value.vmalloc_ok}
        d[key] = value
    return d


ACTIONS: dict[str, type] = {c.__name__: c for c in (ShrinkTo, Reserve, Push, Pop, Truncate, Clear, Retain)}


def action_from_json(d: dict[str, Any]) -> Action:
    fields = dict(d)
    cls = ACTIONS[fields.pop("op")]
    if "outcome" in fields:
        fields["outcome"] = Outcome(**fields["outcome"])
    action: Action = cls(**fields)
    return action


def effects_json(fx: Effects) -> dict[str, Any]:
    return {
        "calls": [{"fn": c.fn.name.lower(), "new_bytes": c.new_bytes, "old_bytes": c.old_bytes} for c in fx.calls],
        "allocated": None
        if fx.allocated is None
        else {"id": fx.allocated.id, "kind": fx.allocated.kind.value, "requested": fx.allocated.requested,
              "physical": fx.allocated.physical},
        "copied": None if fx.copied is None else vars(fx.copied),
        "freed": None if fx.freed is None else vars(fx.freed),
        "copy_before_free": fx.copy_before_free,
    }


def _describe_buffer(buf: Allocation | None) -> str:
    return "dangling" if buf is None else f"{buf.kind.value} {buf.requested}B ({buf.physical}B physical)"


@dataclass(frozen=True)
class Counterexample:
    property_id: str
    model: str
    faults: tuple[str, ...]
    elem_size: int
    page_size: int
    setup: tuple[Action, ...]
    step: Step

    @staticmethod
    def of_step(
        property_id: str, model: ModelSpec, plat: Platform, s: Step, setup: tuple[Action, ...] = ()
    ) -> Counterexample:
        return Counterexample(property_id, model.name, tuple(sorted(model.faults)), plat.elem_size,
                              plat.page_size, setup, s)

    @property
    def platform(self) -> Platform:
        return Platform(self.elem_size, self.page_size)

    def to_json(self) -> dict[str, Any]:
        s, plat = self.step, self.platform
        return {
            "format": FORMAT,
            "property": self.property_id,
            "model": self.model,
            "faults": list(self.faults),
            "elem_size": self.elem_size,
            "page_size": self.page_size,
            "setup": [action_json(a) for a in self.setup],
            "pre": state_json(s.pre, plat),
            "action": action_json(s.action),
            "result": "Ok" if s.ok else "Err",
            "effects": effects_json(s.effects),
            "post": state_json(s.post, plat),
            "overflow": s.overflow,
        }

    def one_line(self) -> str:
        s, plat = self.step, self.platform
        a = s.action
        where = _describe_buffer(s.pre.buf)
        what = f"{type(a).__name__.lower()}({getattr(a, 'min_capacity', '')})"
        outcome = getattr(a, "outcome", None)
        after = _describe_buffer(s.post.buf)
        return (
            f"T={self.elem_size}B len={s.pre.len} cap={s.pre.capacity(plat)} {where}; {what}"
            f"{'' if outcome is None else ' with ' + outcome.describe()} -> {'Ok' if s.ok else 'Err'},"
            f" cap={s.post.capacity(plat)} {after}"
        )

    def text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def file_name(self) -> str:
        digest = hashlib.sha256(self.text().encode()).hexdigest()[:12]
        model = self.model.replace("/", "_").replace("!", "_").replace("+", "_")
        return f"{self.property_id}--{model}--{digest}.json"


def save(cex: Counterexample | TraceCounterexample, directory: Path) -> tuple[Path, bool]:
    """Write atomically under a content-derived name; returns (path, newly written?)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / cex.file_name()
    text = cex.text()
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise TraceError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno})") from None
    if not isinstance(d, dict):
        raise TraceError(f"{path}: not a counterexample file (a JSON object was expected)")
    return d


def load(path: Path) -> tuple[Platform, tuple[Action, ...], VecState, Action, frozenset[str], dict[str, Any]]:
    """Read a counterexample file; any problem is a TraceError with one clear line."""
    d = _read_json(path)
    if d.get("format") != FORMAT:
        raise TraceError(f"{path}: not a counterexample file (expected format {FORMAT!r})")
    try:
        plat = Platform(int(d["elem_size"]), int(d["page_size"]))
        setup = tuple(action_from_json(a) for a in d["setup"])
        pre = state_from_json(d["pre"])
        action = action_from_json(d["action"])
        faults = frozenset(d["faults"])
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{path}: malformed counterexample: {type(e).__name__}: {e}") from None
    return plat, setup, pre, action, faults, d


def _op_summary(s: BinderStep, plat: Platform) -> str:
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


@dataclass(frozen=True)
class TraceCounterexample:
    """A sequence of binder operations from `KVVec::new()` that violates a property."""

    property_id: str
    model: str
    policy: str
    elem_size: int
    page_size: int
    steps: tuple[BinderStep, ...]
    mark: int = 0  # for a cycle, the index of its first operation

    @property
    def platform(self) -> Platform:
        return Platform(self.elem_size, self.page_size)

    def to_json(self) -> dict[str, Any]:
        plat = self.platform
        return {
            "format": TRACE_FORMAT,
            "property": self.property_id,
            "model": self.model,
            "policy": self.policy,
            "elem_size": self.elem_size,
            "page_size": self.page_size,
            "cycle_from": self.mark,
            "steps": [
                {
                    "action": action_json(s.action),
                    "ok": s.ok,
                    "reallocates": s.reallocates,
                    "shrink_attempted": s.shrink_attempted,
                    "post": state_json(s.post, plat),
                }
                for s in self.steps
            ],
        }

    def one_line(self) -> str:
        """Runs of plain operations collapse to `register x4`; notable ones show what changed."""
        plat = self.platform
        parts: list[str] = []
        for s in self.steps:
            text = _op_summary(s, plat)
            if parts and parts[-1].split(" x")[0] == text and "[" not in text:
                count = int(parts[-1].split(" x")[1]) if " x" in parts[-1] else 1
                parts[-1] = f"{text} x{count + 1}"
            else:
                parts.append(text)
        cycle = f" (cycle from operation {self.mark + 1})" if self.mark else ""
        return f"PAGE_SIZE {self.page_size}: " + ", ".join(parts) + cycle

    def text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def file_name(self) -> str:
        digest = hashlib.sha256(self.text().encode()).hexdigest()[:12]
        return f"{self.property_id}--{self.model.replace('/', '_')}--{digest}.json"


def load_trace(path: Path) -> tuple[Platform, str, str, tuple[BinderAction, ...], int]:
    """Read a binder trace: (platform, property id, policy, actions, cycle start)."""
    d = _read_json(path)
    if d.get("format") != TRACE_FORMAT:
        raise TraceError(f"{path}: not a binder trace file (expected format {TRACE_FORMAT!r})")
    try:
        plat = Platform(int(d["elem_size"]), int(d["page_size"]))
        actions = tuple(_binder_action(s["action"]) for s in d["steps"])
        return plat, str(d["property"]), str(d["policy"]), actions, int(d["cycle_from"])
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{path}: malformed trace: {type(e).__name__}: {e}") from None


def _binder_action(d: dict[str, Any]) -> BinderAction:
    outcome = Outcome(**d["outcome"])
    if d["op"] == "Register":
        return Register(int(d["pid"]), outcome)
    if d["op"] == "Deregister":
        return Deregister(int(d["pid"]), outcome)
    raise ValueError(f"unknown operation {d['op']!r}")
