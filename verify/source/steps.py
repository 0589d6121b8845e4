"""Models read from kernel source: `verify run --source PATH` checks the properties on the kernel's functions.

A source model is a ModelSpec whose `source` names a file. `kvvec-src/<T>`
takes shrink_to and reserve from a kvec.rs; `binder-src` takes the process
registration and deregistration, its shrink policy included, from a
context.rs. The engine asks this module for a model's step functions
(`vec_steps`, `binder_policy`): proofs use the symbolic back end (symbolic.py,
binder.py), counterexamples replay on the concrete one (concrete.py). The other
Vec operations (a KUnit setup's push, the list's push, retain and shrink_to
inside binder's operations) stay the model's, as in `verify source`'s
conformance, which proves kvec.rs's own functions separately.

Worker processes receive pickled ModelSpecs, which carry only the path: each
process parses a file once, cached by its path and digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import z3

from models import binder_z3, vec, vec_z3
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, BinderAction, BinderStep, Policy, Register
from models.binder_z3 import SymBinderStep
from models.catalogue import SOURCE_POLICY, ModelSpec, binder_source_model, kvvec_source_models
from models.machine import BITS, Platform
from models.vec import Action, Reserve, ShrinkTo, Step, VecState
from models.vec_z3 import SymAction, SymPlatform, SymReserve, SymShrinkTo, SymStep, SymVec
from verify.files import UnreadableFile, source_sha256
from verify.source import concrete, symbolic
from verify.source.binder import (
    CONTEXT,
    DEREGISTER,
    IMPL,
    REGISTER,
    Removal,
    concrete_step,
    symbolic_paths,
    symbolic_step,
)
from verify.source.locate import KVEC, RESERVE, SHRINK_TO, Function, SourceError, find_method
from verify.traces.trace_input import TraceError


def resolve(path: Path) -> tuple[Path | None, Path | None]:
    """The kvec.rs and the context.rs a path gives: a kernel tree's (context.rs where it has one), or one file."""
    if path.is_dir():
        return path / KVEC, (path / CONTEXT if (path / CONTEXT).is_file() else None)
    try:
        find_method(path, IMPL, REGISTER)
    except SourceError:
        find_method(path, SHRINK_TO.impl, SHRINK_TO.name)  # neither: the kvec.rs error names what is missing
        return path, None
    return None, path


def source_models(path: Path) -> tuple[ModelSpec, ...]:
    """`kvvec-src/<T>` for each element size of the kvvec models, and `binder-src`, from what `path` holds.

    Each model names its file by its absolute path and the SHA-256 of the content read: the reports and the
    traces say what the verdicts are about, and every later read of the file must find the same content.
    """
    kvec, context = resolve(path)
    models: list[ModelSpec] = []
    if kvec is not None:
        models += kvvec_source_models(str(kvec.absolute()), file_digest(str(kvec)))
    if context is not None:
        models.append(binder_source_model(str(context.absolute()), file_digest(str(context))))
    return tuple(models)


def file_digest(path: str) -> str:
    """The SHA-256 of a source file's content (hex)."""
    try:
        return source_sha256(Path(path))
    except UnreadableFile as e:
        raise SourceError(path, None, str(e)) from None


def function(path: str, impl: str, name: str, sha256: str | None = None) -> Function:
    """The method, parsed once per process for each content of the file; with `sha256`, only of that content."""
    digest = file_digest(path)
    if sha256 is not None and digest != sha256:
        raise SourceError(path, None, f"changed since it was read (SHA-256 {digest}, not {sha256})")
    return _function(path, digest, impl, name)


@cache
def _function(path: str, _digest: str, impl: str, name: str) -> Function:
    return find_method(Path(path), impl, name)


# --- kvec.rs: shrink_to and reserve ----------------------------------------------


@dataclass(frozen=True)
class VecSteps:
    """A model's Vec step in both encodings, as vec.step and vec_z3.step take them (without faults)."""

    py: Callable[[Platform, VecState, Action], Step]
    sym: Callable[[SymPlatform, SymVec, SymAction], SymStep]


def model_steps(faults: frozenset[str]) -> VecSteps:
    """The models' own steps, with the seeded faults."""
    return VecSteps(
        lambda plat, pre, action: vec.step(plat, pre, action, faults),
        lambda sp, pre, action: vec_z3.step(sp, pre, action, faults),
    )


def vec_steps(path: str, sha256: str | None = None) -> VecSteps:
    """shrink_to and reserve from the kvec.rs at `path` (with `sha256`, that content); every other operation the
    model's."""
    shrink_to = function(path, SHRINK_TO.impl, SHRINK_TO.name, sha256)
    reserve = function(path, RESERVE.impl, RESERVE.name, sha256)

    def py(plat: Platform, pre: VecState, action: Action) -> Step:
        if isinstance(action, ShrinkTo):
            return concrete.transition(shrink_to, plat, pre, action)[0]
        if isinstance(action, Reserve):
            return concrete.transition(reserve, plat, pre, action)[0]
        return vec.step(plat, pre, action)

    def sym(sp: SymPlatform, pre: SymVec, action: SymAction) -> SymStep:
        if isinstance(action, SymShrinkTo):
            return symbolic.transition(shrink_to, sp, pre, action.min_capacity, action.outcome)
        if isinstance(action, SymReserve):
            return symbolic.transition(reserve, sp, pre, action.additional, action.outcome)
        return vec_z3.step(sp, pre, action)

    return VecSteps(py, sym)


# --- context.rs: register_process and deregister_process ---------------------------


@dataclass(frozen=True, eq=False)
class SourceOperations:
    """binder's operations as the source makes them (models.binder.SourceOperations)."""

    register: Function
    deregister: Function

    def step(self, plat: Platform, state: VecState, action: BinderAction) -> BinderStep:
        taken = concrete_step(self.register if isinstance(action, Register) else self.deregister, plat, state, action)
        return BinderStep(state, action, taken.post, taken.ok, taken.steps)

    def register_z3(self, sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, prefix: str) -> SymBinderStep:
        return _folded(self.register, sp, pre, pid, outcome, prefix, None)

    def deregister_z3(
        self, sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, prefix: str, remove_one: bool, at: Any
    ) -> SymBinderStep:
        removal = Removal(at=at) if at is not None else Removal(last=True) if remove_one else None
        return _folded(self.deregister, sp, pre, pid, outcome, prefix, removal)


def _folded(
    fn: Function, sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, prefix: str, removal: Removal | None
) -> SymBinderStep:
    """Every path of the function as one binder_z3 step (a wrap-around is `verify source`'s to report)."""
    st, constraints = symbolic_step(fn, sp, pre, pid, outcome, prefix, removal)
    # No policy-language rule, so no arithmetic_fault: binder.policy-arithmetic does not apply to a source model.
    return SymBinderStep(pre, st.post, st.ok, binder_z3._changed(pre, st.post), st.shrunk, st.shrink_ok,
                         tuple(constraints), z3.BoolVal(False))


def binder_policy(path: str, sha256: str | None = None) -> Policy:
    """The policy of the context.rs at `path` (with `sha256`, that content): its operations, read from the
    source, not from models.binder."""
    register = function(path, IMPL, REGISTER, sha256)
    deregister = function(path, IMPL, DEREGISTER, sha256)
    return _policy(path, register, deregister)


@cache
def _policy(path: str, register: Function, deregister: Function) -> Policy:
    # One Policy per parsed file: the explorer's graph is cached per Policy.
    return Policy(
        SOURCE_POLICY, f"deregister_process at {path}:{deregister.line}", _rule_in_source, _rule_in_source,
        _rule_in_source, _rule_in_source, source=SourceOperations(register, deregister),
    )


def _rule_in_source(*_: Any) -> Any:
    raise TypeError("a source policy's rule is its deregister_process: binder_step and binder_z3 run it")


# --- reading every function before any proof ------------------------------------


def check_supported(model: ModelSpec) -> None:
    """Walk every path of the model's source functions once: an unsupported construct raises here, before a proof."""
    assert model.source is not None
    if model.policy is not None:
        sp = SymPlatform(Platform(ELEM_SIZE, 4096))
        for name in (REGISTER, DEREGISTER):
            pre = binder_z3.any_state("pre")
            fn = function(model.source, IMPL, name, model.source_sha256)
            symbolic_paths(fn, sp, pre, z3.BitVec("pid", BITS), SymOutcome.fresh("o"))
        return
    sp = SymPlatform(Platform(model.size_min, 4096))
    for op in (SHRINK_TO, RESERVE):
        fn = function(model.source, op.impl, op.name, model.source_sha256)
        symbolic.explore(fn, sp, SymVec.fresh("pre"), z3.BitVec(op.argument, BITS), SymOutcome.fresh("o"))


# --- replaying a trace of a source model --------------------------------------------


Readable = TypeVar("Readable")


class _OnSource:
    """verify.traces.replay's KernelSource: a source model's functions, read from its file with its content."""

    def vec_step(self, model: ModelSpec) -> Callable[[Platform, VecState, Action], Step]:
        assert model.source is not None
        return _readable(lambda: vec_steps(model.source or "", model.source_sha256).py)

    def binder_policy(self, model: ModelSpec) -> Policy:
        assert model.source is not None
        return _readable(lambda: binder_policy(model.source or "", model.source_sha256))


def _readable(read: Callable[[], Readable]) -> Readable:
    """A source the trace names but the front end cannot take (the file changed meanwhile, say) is a TraceError."""
    try:
        return read()
    except SourceError as e:
        raise TraceError(str(e)) from None


ON_SOURCE = _OnSource()
