"""Binder's context.rs: a process's registration and deregistration as transitions in the model's terms.

The interpreter (interpreter.py) walks `register_process` and
`deregister_process`; this module adds what they touch: the context's lock
(`self.manager.lock()`), `all_procs` behind it, the process passed in, and the
list's operations. Each list operation is a step of the Vec model (push,
retain, shrink_to of models/vec.py and vec_z3.py): the binder conformance is
about the policy around them, while kvec.rs's own functions are checked on
their own (conformance.py).

The models describe a context's own processes, so the source's guard against a
process of another context (`Arc::ptr_eq(self, &proc.ctx)`) is taken as true:
that path returns before `all_procs` is touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tree_sitter
import z3

from models import vec, vec_z3
from models.allocator import Outcome
from models.allocator_z3 import SymOutcome, ite, u64
from models.binder import ELEM_SIZE, BinderAction, Register
from models.machine import Platform
from models.vec import Clear, Push, Retain, ShrinkTo, VecState
from models.vec_z3 import SymPlatform, SymPush, SymRetain, SymShrinkTo, SymTruncate, SymVec
from verify.source.concrete import ConcreteDomain
from verify.source.interpreter import UNIT, Domain, Fallible, Interpreter, SelfRef, Token
from verify.source.locate import Function
from verify.source.symbolic import Decisions, SymbolicDomain, _bool, every_path

CONTEXT = Path("drivers/android/binder/context.rs")
IMPL = "Context"
REGISTER = "register_process"
DEREGISTER = "deregister_process"
ERRORS = {"EINVAL", "ENOMEM", "EBUSY", "GFP_KERNEL"}


@dataclass(frozen=True)
class Process:
    """A process: only its identity matters, and identities are only compared for equality."""

    identity: Any


@dataclass(frozen=True)
class Mutex:
    """`self.manager`: the lock around all_procs."""


@dataclass(frozen=True)
class Guard:
    """The lock held: its `all_procs` field is the list."""


@dataclass(frozen=True)
class ProcList:
    """`all_procs`: the operations go to the interpreter's list back end."""


class Procs(Protocol):
    """The list back end: the model's Vec steps on concrete values or on Z3 terms."""

    def length(self) -> Any: ...
    def capacity(self) -> Any: ...
    def push(self, identity: Any) -> Any: ...  # the push's result (an allocation may fail)
    def retain(self, identity: Any, kind: str) -> None: ...  # "drop" it, "keep" all, or "clear"
    def shrink_to(self, target: Any) -> Any: ...


class BinderInterpreter(Interpreter):
    """The interpreter with a binder Context as `self`; `procs` None inside a retain closure (no list there)."""

    def __init__(self, fn: Function, domain: Domain, procs: Procs | None) -> None:
        super().__init__(fn, domain, {})
        self.procs = procs

    def _name(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        name = self._text(node)
        if name not in env and name in ERRORS:
            return Token(name)
        return super()._name(node, env)

    def _eval(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        if node.type == "reference_expression":  # `&x`: a reference to a value is the value here
            return self._eval(node.named_children[-1], env)
        return super()._eval(node, env)

    def _let(self, stmt: tree_sitter.Node, env: dict[str, Any]) -> str:
        pattern = stmt.child_by_field_name("pattern")
        value = stmt.child_by_field_name("value")
        if pattern is not None and value is not None and self._text(pattern) == "_":
            self._eval(value, env)  # `let _ = ...`: the value (a Result, say) is dropped
            return "_"
        return super()._let(stmt, env)

    def _field(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("field")
        assert value is not None and name is not None
        owner, field = self._eval(value, env), self._text(name)
        if isinstance(owner, SelfRef) and field == "manager":
            return Mutex()
        if isinstance(owner, Guard) and field == "all_procs":
            return ProcList()
        if isinstance(owner, Process) and field == "ctx":
            return Token("context")
        return self._unsupported(node, "field")

    def _operate(self, node: tree_sitter.Node, op: str, a: Any, b: Any) -> Any:
        if isinstance(a, Process) and isinstance(b, Process) and op in ("==", "!="):
            return self.domain.compare(op, a.identity, b.identity)  # `Arc::as_ptr(p) != Arc::as_ptr(proc)`
        if any(isinstance(v, (Process, Mutex, Guard, ProcList, Token, SelfRef)) for v in (a, b)):
            return self._unsupported(node, f"operator `{op}` on these operands")
        return super()._operate(node, op, a, b)

    def _function(self, node: tree_sitter.Node, path: str, args: list[Any]) -> Any:
        if path == "Arc::ptr_eq" and len(args) == 2:
            a, b = args
            if isinstance(a, SelfRef) and b == Token("context"):
                return True  # the models describe this context's own processes
            if isinstance(a, Process) and isinstance(b, Process):
                return self.domain.compare("==", a.identity, b.identity)
        if path == "Arc::as_ptr" and len(args) == 1 and isinstance(args[0], Process):
            return args[0]
        return super()._function(node, path, args)

    def _method(
        self, node: tree_sitter.Node, receiver: Any, name: str, arg_nodes: list[tree_sitter.Node], env: dict[str, Any]
    ) -> Any:
        if isinstance(receiver, Mutex) and name == "lock" and not arg_nodes:
            return Guard()
        if isinstance(receiver, Fallible) and name == "ok" and not arg_nodes and not receiver.option:
            return Fallible(receiver.ok, receiver.value, None, option=True)
        if isinstance(receiver, ProcList):
            if self.procs is None:
                return self._unsupported(node, "use of all_procs inside a closure")
            return self._list(node, self.procs, name, arg_nodes, env)
        return super()._method(node, receiver, name, arg_nodes, env)

    def _list(
        self, node: tree_sitter.Node, procs: Procs, name: str, arg_nodes: list[tree_sitter.Node], env: dict[str, Any]
    ) -> Any:
        if name == "retain" and len(arg_nodes) == 1:
            process = self._only_process(node, env)
            keep_self, keep_others = self._keeps(arg_nodes[0], env)
            kinds = {(False, True): "drop", (True, True): "keep", (False, False): "clear"}
            if (keep_self, keep_others) not in kinds:
                return self._unsupported(arg_nodes[0], "retain that keeps only the process itself")
            procs.retain(process.identity, kinds[keep_self, keep_others])
            return UNIT
        args = [self._eval(a, env) for a in arg_nodes]
        if name == "len" and not args:
            return procs.length()
        if name == "capacity" and not args:
            return procs.capacity()
        if name == "is_empty" and not args:
            return self.domain.compare("==", procs.length(), self.domain.const(0))
        if name == "push" and len(args) == 2 and isinstance(args[0], Process) and isinstance(args[1], Token):
            # Both push and shrink_to may allocate: a step has one allocator outcome, so one of them per path.
            self._effects(node, {"allocation"})
            return Fallible(procs.push(args[0].identity), UNIT, Token("AllocError"))
        if name == "shrink_to" and len(args) == 2 and isinstance(args[1], Token):
            self._effects(node, {"allocation"})
            return Fallible(procs.shrink_to(args[0]), UNIT, Token("AllocError"))
        return self._unsupported(node, "all_procs method call")

    def _only_process(self, node: tree_sitter.Node, env: dict[str, Any]) -> Process:
        processes = [v for v in env.values() if isinstance(v, Process)]
        if len(processes) != 1:
            self._unsupported(node, "retain without exactly one process in scope")
        return processes[0]

    def _keeps(self, closure: tree_sitter.Node, env: dict[str, Any]) -> tuple[bool, bool]:
        """Whether the closure keeps the process itself, and whether it keeps every other one.

        The closure sees only its element and the process, and identities are
        only compared for equality: its answer for any element is one of these
        two, so two concrete runs (identities 1 and 0 against the process's 1)
        decide it for every identity.
        """
        params = closure.child_by_field_name("parameters")
        body = closure.child_by_field_name("body")
        if closure.type != "closure_expression" or params is None or body is None:
            return self._unsupported(closure, "retain argument (a closure expected)")
        names = [c for c in params.named_children if c.type in ("identifier", "parameter")]
        if len(names) != 1:
            return self._unsupported(params, "closure parameters")
        param = names[0] if names[0].type == "identifier" else names[0].child_by_field_name("pattern")
        if param is None or param.type != "identifier":
            return self._unsupported(params, "closure parameters")
        captured = {k: Process(1) for k, v in env.items() if isinstance(v, Process)}
        answers = []
        for element in (1, 0):
            inner = BinderInterpreter(self.fn, ConcreteDomain(Platform(ELEM_SIZE), Outcome(), 0), None)
            answer = inner._eval(body, {**captured, self._text(param): Process(element)})
            if not isinstance(answer, bool):
                return self._unsupported(body, "retain closure (it must compare the element with the process)")
            answers.append(answer)
        return answers[0], answers[1]


# --- the concrete back end ---------------------------------------------------


class ConcreteProcs:
    """all_procs over the reference model (models/vec.py): one Vec step per list operation."""

    def __init__(self, plat: Platform, state: VecState, outcome: Outcome) -> None:
        self.plat = plat
        self.state = state
        self.outcome = outcome
        self.shrink_target: int | None = None
        self.steps: list[vec.Step] = []  # the Vec steps made, in order (a BinderStep's `steps`)

    def length(self) -> int:
        return self.state.len

    def capacity(self) -> int:
        return self.state.capacity(self.plat)

    def push(self, identity: int) -> bool:
        return self._step(Push(identity, self.outcome))

    def retain(self, identity: int, kind: str) -> None:
        if kind != "keep":
            self._step(Retain(identity) if kind == "drop" else Clear())

    def shrink_to(self, target: int) -> bool:
        self.shrink_target = target
        return self._step(ShrinkTo(target, self.outcome))

    def _step(self, action: vec.Action) -> bool:
        taken = vec.step(self.plat, self.state, action)
        self.state = taken.post
        self.steps.append(taken)
        return taken.ok


@dataclass(frozen=True)
class SourceStep:
    """The source's operation on one input: result, post-state, the shrink_to it called, the lines it ran."""

    pre: VecState
    action: BinderAction
    post: VecState
    ok: bool
    shrink_target: int | None  # None: no shrink_to call
    overflow: bool
    lines: tuple[int, ...]
    steps: tuple[vec.Step, ...] = ()  # the Vec steps it made


def concrete_step(fn: Function, plat: Platform, pre: VecState, action: BinderAction) -> SourceStep:
    """Run the source function on one input, as the kernel would."""
    domain = ConcreteDomain(plat, action.outcome, pre.next_id)
    procs = ConcreteProcs(plat, pre, action.outcome)
    run = BinderInterpreter(fn, domain, procs)
    result = run.run([Process(action.pid)])
    ok = bool(result.ok) if isinstance(result, Fallible) else result is UNIT
    lines = tuple(dict.fromkeys(run.lines))
    return SourceStep(pre, action, procs.state, ok, procs.shrink_target, domain.rec.overflow, lines, tuple(procs.steps))


def function_for(action: BinderAction) -> str:
    return REGISTER if isinstance(action, Register) else DEREGISTER


# --- the symbolic back end ---------------------------------------------------


class SymbolicProcs:
    """all_procs over the Z3 encoding (models/vec_z3.py); `prefix` names the path's fresh variables.

    `removal` (binder_z3.deregister's `remove_one` or `at`) makes a retain that drops the process
    remove the last element or the one at an index instead: the same removal when the identities are
    distinct, without retain's quantifier, for long unrollings. It says where the process stands in the
    list given (`state`), so only a drop from that list takes it; a later drop is retain's own step.
    """

    def __init__(
        self, sp: SymPlatform, state: SymVec, outcome: SymOutcome, prefix: str, removal: Removal | None = None
    ) -> None:
        self.sp = sp
        self.state = state
        self.outcome = outcome
        self.prefix = prefix
        self.removal = removal
        self.given = state  # the list `removal` describes
        self.constraints: list[Any] = []
        self.shrunk: Any = z3.BoolVal(False)
        self.shrink_target: Any = u64(0)
        self.shrink_ok: Any = z3.BoolVal(True)

    def length(self) -> Any:
        return self.state.len

    def capacity(self) -> Any:
        return self.sp.capacity(self.state)

    def push(self, identity: Any) -> Any:
        return self._step(SymPush(identity, self.outcome), "push")

    def retain(self, identity: Any, kind: str) -> None:
        removal = self.removal if kind == "drop" and self.state is self.given else None
        if removal is not None and removal.at is not None:
            at, pre = removal.at, self.state
            removed = dataclasses.replace(pre, len=pre.len - 1, elems=pre.elems.removed(at, u64(1)))
            self.state = removed if removal.present is None else ite(removal.present, removed, pre)
        elif removal is not None and removal.last:
            self._step(SymTruncate(self.state.len - 1), "retain")
        elif kind != "keep":
            self._step(SymRetain(identity) if kind == "drop" else SymTruncate(u64(0)), "retain")

    def shrink_to(self, target: Any) -> Any:
        self.shrunk, self.shrink_target = z3.BoolVal(True), target
        self.shrink_ok = self._step(SymShrinkTo(target, self.outcome), "shrink")
        return self.shrink_ok

    def _step(self, action: vec_z3.SymAction, name: str) -> Any:
        taken = vec_z3.step(self.sp, self.state, action, prefix=f"{self.prefix}.{name}")
        self.state = taken.post
        self.constraints += taken.constraints
        return taken.ok


@dataclass(frozen=True)
class SymSourceStep:
    """The source's operation over every path: the counterpart of binder_z3.SymBinderStep."""

    post: SymVec
    ok: Any
    shrunk: Any  # shrink_to was called
    shrink_target: Any
    overflow: Any
    shrink_ok: Any = z3.BoolVal(True)  # shrink_to's result, when it was called


@dataclass(frozen=True)
class BinderPath:
    """One path through the source function: its condition, its step, its retains' side conditions, its lines."""

    condition: Any
    step: SymSourceStep
    constraints: tuple[Any, ...]
    lines: tuple[int, ...]


@dataclass(frozen=True)
class Removal:
    """How a retain that drops the process removes it: the last element, or the one at index `at`.

    `present` (with `at`): the process stands at `at` only where this holds, and is absent elsewhere.
    """

    last: bool = False
    at: Any = None
    present: Any = None


def symbolic_paths(
    fn: Function, sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, tag: str = "src",
    removal: Removal | None = None,
) -> list[BinderPath]:
    """Every path through the function; `tag` names their fresh variables (two versions need two tags)."""
    count = 0

    def run_path(decisions: Decisions) -> BinderPath:
        nonlocal count
        domain = SymbolicDomain(sp, outcome, pre.next_id, decisions)
        procs = SymbolicProcs(sp, pre, outcome, f"{tag}{count}", removal)
        count += 1
        run = BinderInterpreter(fn, domain, procs)
        result = run.run([Process(pid)])
        ok = _bool(result.ok) if isinstance(result, Fallible) else z3.BoolVal(result is UNIT)
        taken = SymSourceStep(procs.state, ok, procs.shrunk, procs.shrink_target, domain.rec.overflow, procs.shrink_ok)
        lines = tuple(dict.fromkeys(run.lines))
        return BinderPath(z3.And(*domain.path), taken, tuple(procs.constraints), lines)

    return every_path(fn, run_path)


def symbolic_step(
    fn: Function, sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, tag: str = "src",
    removal: Removal | None = None,
) -> tuple[SymSourceStep, list[Any]]:
    """The source function as one transition over all its paths, and the side conditions its retains add."""
    *rest, last = symbolic_paths(fn, sp, pre, pid, outcome, tag, removal)
    folded = last.step
    for path in reversed(rest):
        folded = ite(path.condition, path.step, folded)
    return folded, [c for path in [*rest, last] for c in path.constraints]
