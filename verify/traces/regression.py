"""A counterexample as a regression test: a pytest module for the model, a KUnit test for the kernel.

`as_pytest` writes a self-contained pytest module that rebuilds the trace's
initial state, runs its operations through the Python reference model and
judges the last one with the property's own Python judge. It holds two tests:
`..._violation_reproduces` pins the counterexample down (it passes while the
violation exists), and `..._holds` states the property (it fails while the
violation exists and passes once it is fixed): the one to keep.

`as_kunit` writes a KUnit test case in Rust that drives a `KVVec` through the
same operations and checks what the property states, as far as a test can
observe it from Rust: capacity, length, elements, the buffer pointer and
whether it is a vmalloc address. Physical memory (ksize of a kmalloc object,
the pages of a vmalloc area) and the allocator's calls are not observable, and
the allocator's outcomes (does this kmalloc succeed, does kvmalloc fall back to
vmalloc) cannot be forced: the generated comments say which outcomes the trace
assumed and what the test cannot see.

The text of both lives in Jinja2 templates next to this module (templates/*.j2);
the functions here decide what goes in. By kind of trace:
- A start from `KVVec::new()` or a scenario's setup is rebuilt by its operations.
- An arbitrary start (the solver's state 0) is a literal `INITIAL` in the pytest
  module; the KUnit test builds it with `with_capacity` and pushes, which give
  the trace's length, capacity and elements exactly. The buffer's kind cannot be
  forced (kvmalloc chooses), and a comment says so, as for a single call's state.
- Seeded faults reach the pytest module as they reach the replay (`step(...,
  FAULTS)`, `with_faults(policy, FAULTS)`). A KUnit test can follow only a fault
  in binder's policy rule, which is the test's own `deregister`; any other fault
  lives in code the test calls, and the header says the test runs the kernel's
  code there.
- A `reserve.*` trace calls `reserve(additional)` instead of `shrink_to`.

What the KUnit output relies on (read, not copied):
- rust/kernel/alloc/kvec.rs in torvalds/linux: the test module
  `#[macros::kunit_tests(rust_kvec)] mod tests { use super::*; use crate::prelude::*; ... }`
  with plain `#[test] fn test_kvec_retain()` cases (the module was renamed from
  `rust_kvec_kunit` to `rust_kvec` on the list, 2025), 4-space rustfmt indentation;
  `Vec::with_capacity(capacity, flags)` being `Vec::new()` plus `reserve`, `push(v, flags)`,
  `retain(&mut self, f: impl FnMut(&mut T) -> bool)`, `as_ptr()`, `capacity()`.
- "rust: kunit: support checked `-> Result`s in KUnit `#[test]`s" (Miguel Ojeda, commit
  950b306c296e, v6.16): a `#[test]` may return `Result`, an `Err` fails the test.
- `Vec<T, KVmalloc>::shrink_to(&mut self, min_capacity: usize, flags: Flags) -> Result<(), AllocError>`
  (v7.1) and its use of `bindings::is_vmalloc_addr(self.ptr.as_ptr().cast())`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
import textwrap
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2

from models.allocator import Outcome
from models.binder import BinderStep, Deregister, Register
from models.elements import GARBAGE
from models.machine import PAGE_SIZES, USIZE_MAX, Platform
from models.policy_lang import to_rust
from models.variants import MERGED
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate
from properties.binder import reclaim_bound
from verify.traces.trace import Trace, describe_buffer

WIDTH = 88  # ruff's default line length: the generated module is clean wherever it is written
RUST_WIDTH = 100  # the kernel's rustfmt max_width
HUGE_LEN = 1 << 20  # above this many elements a unit test cannot sensibly build the state


# --- templates -------------------------------------------------------------------------

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    """The templates' environment: a missing value is an error, never an empty string.

    Whitespace is controlled explicitly: a line holding only a block tag ({% if %}, {% for %}, ...)
    produces nothing (trim_blocks, lstrip_blocks), and a template's last newline is kept.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # source code, not HTML
    )
    env.filters["quoted"] = _quoted
    env.filters["comment"] = _comment_block
    # A macro renders whole lines; `{{ macro(...) | chomp }}` on a line of its own gives its last newline back.
    env.filters["chomp"] = lambda text: text.removesuffix("\n")
    return env


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


# --- names ---------------------------------------------------------------------------


def _ident(text: str) -> str:
    """`shrink.change-lowers-physical` -> `shrink_change_lowers_physical`."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9a-zA-Z]", "_", text)).strip("_").lower()


def name_base(trace: Trace, budget: int) -> str:
    """`<prop>_<model>` as an identifier of at most `budget` characters.

    A name too long loses the model's seeded faults, then its tail, for a digest of the full name.
    """
    base = f"{_ident(trace.property_id)}_{_ident(trace.model)}"
    if len(base) <= budget:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    plain = f"{_ident(trace.property_id)}_{_ident(trace.model.split('!')[0])}"
    if len(plain) + 7 <= budget:
        return f"{plain}_{digest}"
    return f"{base[: budget - 7].rstrip('_')}_{digest}"


# --- Python literals ---------------------------------------------------------------------


def _literal(value: object, indent: int = 0, width: int = WIDTH) -> str:
    """`value` as Python source: on one line if it fits, else one argument per line."""
    flat = _flat(value)
    if indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 4)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        args = [f"{pad}{name}={_literal(v, indent + 4 + len(name) + 1, width)}," for name, v in _fields(value)]
        return f"{type(value).__name__}(\n" + "\n".join(args) + f"\n{' ' * indent})"
    if isinstance(value, tuple):
        items = [f"{pad}{_literal(v, indent + 4, width)}," for v in value]
        return "(\n" + "\n".join(items) + f"\n{' ' * indent})"
    return flat


def _flat(value: object) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        args = ", ".join(f"{name}={_flat(v)}" for name, v in _fields(value))
        return f"{type(value).__name__}({args})"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, tuple):
        inner = ", ".join(_flat(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool | int) or value is None:
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__}")


def _fields(value: object) -> list[tuple[str, object]]:
    """The fields that differ from their defaults (the defaults say nothing)."""
    assert dataclasses.is_dataclass(value) and not isinstance(value, type)
    out = []
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        if f.default is not dataclasses.MISSING and v == f.default:
            continue
        out.append((f.name, v))
    return out


def _names(value: object, found: dict[str, set[str]]) -> None:
    """The classes a literal names, by module, for the imports."""
    if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(value, enum.Enum):
        found.setdefault(type(value).__module__, set()).add(type(value).__name__)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for _, v in _fields(value):
            _names(v, found)
    elif isinstance(value, tuple):
        for v in value:
            _names(v, found)


def _docstring(text: str, indent: int = 0) -> str:
    """Wrapped lines for a docstring, with nothing that would end it early."""
    clean = text.replace("\\", "\\\\").replace('"""', "'''")
    return "\n".join(textwrap.wrap(clean, WIDTH - indent, break_on_hyphens=False))


def _string(text: str, column: int, indent: int = 0) -> str:
    """A string literal starting at `column` in a block at `indent`, split into implicitly
    concatenated pieces when it would not fit on the line."""
    if column + len(_quoted(text)) <= WIDTH:
        return _quoted(text)
    pieces = textwrap.wrap(text, WIDTH - indent - 8, drop_whitespace=False, break_on_hyphens=False)
    pad = " " * (indent + 4)
    return "(\n" + "\n".join(f"{pad}{_quoted(piece)}" for piece in pieces) + f"\n{' ' * indent})"


def _quoted(text: str) -> str:
    """A double-quoted Python string literal (JSON's escapes are Python's)."""
    return json.dumps(text)


def _setup_items(setup: Sequence[Action]) -> tuple[list[dict[str, str]], dict[str, set[str]]]:
    """The setup actions as tuple items (a literal, or the bounds of a range of pushes) and the names they use.

    A run of three or more plain pushes of consecutive identities becomes a generator over a range.
    """
    names: dict[str, set[str]] = {}
    items: list[dict[str, str]] = []
    i = 0
    while i < len(setup):
        a = setup[i]
        j = i
        if isinstance(a, Push) and a.outcome == Outcome():
            while (
                j + 1 < len(setup)
                and isinstance(nxt := setup[j + 1], Push)
                and nxt.outcome == Outcome()
                and nxt.identity == a.identity + (j + 1 - i)
            ):
                j += 1
        if j - i + 1 >= 3:
            assert isinstance(a, Push)
            first, end = a.identity, a.identity + (j - i + 1)
            items.append({"bounds": f"{end}" if first == 0 else f"{first}, {end}", "literal": ""})
            names.setdefault(type(a).__module__, set()).add("Push")
        else:
            for k in range(i, j + 1):
                items.append({"bounds": "", "literal": _literal(setup[k], 4)})
                _names(setup[k], names)
        i = j + 1
    return items, names


def _imports(names: dict[str, set[str]]) -> str:
    """The imports as isort writes them: one line each, or one name a line when that is too long."""
    lines = []
    for module, ns in sorted(names.items()):
        line = f"from {module} import {', '.join(sorted(ns))}"
        if len(line) > WIDTH:
            line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in sorted(ns)) + ")"
        lines.append(line)
    return "\n".join(lines)


def _note(s: Step | BinderStep, trace: Trace) -> str:
    """What an operation did in the model, for a comment: capacity change, buffer kind, Err."""
    plat = trace.platform
    notes = []
    cap_pre, cap_post = s.pre.capacity(plat), s.post.capacity(plat)
    if cap_pre != cap_post:
        notes.append(f"capacity {cap_pre} -> {cap_post}")
    if s.pre.buf != s.post.buf and s.post.buf is not None:
        notes.append(describe_buffer(s.post.buf))
    if isinstance(s, BinderStep) and s.shrink_attempted and not s.steps[-1].ok:
        notes.append("its shrink_to returns Err")
    if not s.ok:
        notes.append("Err")
    return "; ".join(notes)


# --- the pytest module ---------------------------------------------------------------


def as_pytest(trace: Trace) -> str:
    """A pytest module reproducing `trace` on the Python model, judged by the property's Python judge."""
    names: dict[str, set[str]] = {
        "models.machine": {"Platform"},
        "properties.registry": {"all_properties"},
        "properties.binder": {"SequenceProperty"},
    }
    summary = trace.one_line()
    values: dict[str, object] = {}
    if trace.policy is not None:
        # A built-in policy by name; one the user defined by its rule, so the test needs no configuration.
        maker = "policy_named" if trace.policy_rule is None else "Policy"
        names.setdefault("models.binder", set()).update({"BinderStep", "binder_step", maker})
        names.setdefault("models.vec", set()).add("VecState")
        if trace.faults:
            # The seeded faults change the policy's rule or ride along into its Vec steps, as in the replay.
            names["models.binder"].add("with_faults")
        if trace.start == "arbitrary":
            _names(trace.initial, names)
        actions = []
        for s in trace.steps:
            assert isinstance(s, BinderStep)
            _names(s.action, names)
            literal = _literal(s.action, 4)
            note = _note(s, trace)
            fits = note and len(literal) + 5 + len(note) + 4 <= WIDTH  # "    literal,  # note"
            actions.append({"literal": literal, "note": note if fits else ""})
        values = {
            "initial": _literal(trace.initial, 0) if trace.start == "arbitrary" else "",
            "cycle_from": trace.cycle_from or 0,
            "actions": actions,
        }
    else:
        last = trace.steps[-1]
        assert isinstance(last, Step)
        names.setdefault("models.vec", set()).update({"Step", "step"})
        names.setdefault("properties.base", set()).add("Property")
        _names(last.action, names)
        if trace.setup:
            names["models.vec"].update({"Action", "VecState"})
            items, setup_names = _setup_items(trace.setup)
            for module, ns in setup_names.items():
                names.setdefault(module, set()).update(ns)
        else:
            items = []
            _names(trace.initial, names)
        values = {
            "setup": items,
            "initial": "" if trace.setup else _literal(trace.initial, 0),
            "action": _literal(last.action, 0),
        }

    platform = _platform_literal(trace.platform, names)  # before the imports: it may add one
    title = f"Regression test for {trace.property_id} on {trace.model}."
    if len(title) + 3 > WIDTH:
        title = f"Regression test for {trace.property_id}."
    return _template("pytest_module.py.j2").render(
        title=_docstring(title, 3),
        origin=_docstring(f"Generated by verify from a counterexample on {trace.model}: {_sentence(summary)}"),
        statement=_docstring(f"The property: {_sentence(_property_statement(trace))}"),
        how_to_run=_docstring(
            "Run it from the verify project's root with `python -m pytest FILE`: it imports the"
            " project's models and properties."
        ),
        imports=_imports(names),
        property_id=trace.property_id,
        elem_size=trace.elem_size,
        platform=platform,
        page_size=trace.page_size,
        binder=trace.policy is not None,
        policy=trace.policy or "",
        policy_expr=_policy_expr(trace),
        faults=sorted(trace.faults),
        summary=_string(summary, len("SUMMARY = ")),
        base=name_base(trace, WIDTH - len("def test__violation_reproduces() -> None:")),
        width=WIDTH,
        **values,
    )


def _platform_literal(plat: Platform, names: dict[str, set[str]]) -> str:
    """`Platform(...)`, with the model's kernel-code choices when it is not the merged code."""
    if plat.code == MERGED:
        return repr(plat)
    names.setdefault("models.variants", set()).add("KernelCode")
    return f"{repr(plat)[:-1]}, code={_flat(plat.code)})"


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


def _property_statement(trace: Trace) -> str:
    from properties.registry import all_properties

    for prop in all_properties(trace.page_size):
        if prop.id == trace.property_id:
            return prop.statement
    return "(not in the catalogue)"


# --- the KUnit test ------------------------------------------------------------------


def rust_type(elem_size: int) -> str:
    """A Rust element type of the trace's size."""
    return {0: "()", 1: "u8", 2: "u16", 4: "u32", 8: "u64"}.get(elem_size, f"[u8; {elem_size}]")


def _rust_value(elem_size: int, index: str) -> str:
    """The element pushed for identity `index` (a `usize` expression)."""
    t = rust_type(elem_size)
    if elem_size == 0:
        return "()"
    if t.startswith("["):
        return f"[{index} as u8; {elem_size}]"
    return f"{index} as {t}"


def _comment(text: str, indent: int, prefix: str = "//") -> list[str]:
    pad = " " * indent
    width = RUST_WIDTH - indent - len(prefix) - 1
    return [f"{pad}{prefix} {line}" for line in textwrap.wrap(text, width, break_on_hyphens=False)]


def _comment_block(text: str, indent: int = 4, prefix: str = "//") -> str:
    """A template's `{% filter comment %}`: the text, its lines joined, as Rust comment lines that fit."""
    return "\n".join(_comment(" ".join(text.split()), indent, prefix))


def as_kunit(trace: Trace) -> str:
    """A KUnit test case for rust/kernel/alloc/kvec.rs that replays `trace` and checks the property."""
    account = trace.one_line()
    if trace.policy is None:
        account = f"PAGE_SIZE {trace.page_size}: {account}"
    body = _binder_values(trace) if trace.policy is not None else _vec_values(trace)
    return _template("kunit_test.rs.j2").render(
        property_id=trace.property_id,
        model=trace.model,
        statement=_sentence(_property_statement(trace)),
        account=_sentence(account),
        faults_note=_faults_note(trace) or "",
        name=f"test_{name_base(trace, RUST_WIDTH - len('fn test_() -> Result {'))}",
        binder=trace.policy is not None,
        **body,
    )


# --- single calls of shrink_to ----------------------------------------------------------


def _count(n: int, ctx_symbolic: bool, page: int) -> str:
    """An element count as Rust: `usize::MAX`, `k * PAGE_SIZE + r` for the KUnit scenarios, else decimal."""
    if n == USIZE_MAX:
        return "usize::MAX"
    if ctx_symbolic and n >= page:
        k, r = divmod(n, page)
        text = "PAGE_SIZE" if k == 1 else f"{k} * PAGE_SIZE"
        return text if r == 0 else f"{text} + {r}"
    return f"{n}"


def _vec_values(trace: Trace) -> dict[str, object]:
    """What the KUnit test of a single call says: the state to build, the values to probe, the call, the check."""
    last = trace.steps[-1]
    assert isinstance(last, Step) and isinstance(last.action, ShrinkTo | Reserve)
    plat = trace.platform
    size = plat.elem_size
    symbolic = trace.property_id.startswith(("kunit.", "scenario."))
    page = plat.page_size
    if isinstance(last.action, Reserve):
        method, argument = "reserve", last.action.additional
    else:
        method, argument = "shrink_to", last.action.min_capacity
    pre = last.pre
    huge = None
    if pre.len > HUGE_LEN or pre.layout_bytes(plat) > 1 << 30:
        huge = {"len": pre.len, "bytes": pre.layout_bytes(plat)}
    check = _ident(trace.property_id) if trace.property_id in _VEC_PROBES else "fallback"
    return {
        "t": rust_type(size),
        "var": "_" if size == 0 else "i",
        "value": _rust_value(size, "i"),
        "page": page,
        "uses_page": symbolic or trace.property_id in _PAGE_CHECKS,
        "page_guard": not symbolic and size != 0,
        "huge": huge,
        "setup": _setup_ops(trace.setup, size, symbolic, page),
        "pre": {
            "len": pre.len,
            "capacity": _count(pre.capacity(plat), False, page),
            "kind": "no buffer" if pre.buf is None else f"a {describe_buffer(pre.buf)} buffer",
            "layout": _count(pre.layout_len, symbolic, page),
            "pushes": _count(pre.len, symbolic, page) if pre.len else "",
            "assert_capacity": _count(pre.capacity(plat), symbolic, page) if size != 0 else "",
            "buffer": pre.buf.kind.value if pre.buf is not None else "",
        },
        "probes": _VEC_PROBES.get(trace.property_id, frozenset()),
        "call": {
            "method": method,
            "outcome": last.action.outcome.describe(),
            "result": "Ok" if last.ok else "Err",
            "capacity": _count(last.post.capacity(plat), False, page),
            "buffer": "no buffer" if last.post.buf is None else describe_buffer(last.post.buf),
        },
        "check": check,
        "c": {
            "property_id": trace.property_id,
            "argument": _count(argument, symbolic, page),
            "t": rust_type(size),
            "zst": size == 0,
            "value": _rust_value(size, "i"),
            "pre_buf": "no buffer" if pre.buf is None else describe_buffer(pre.buf),
            "post_buf": "no buffer" if last.post.buf is None else describe_buffer(last.post.buf),
        },
    }


def _setup_ops(actions: Sequence[Action], size: int, symbolic: bool, page: int) -> list[dict[str, str]]:
    """Setup actions for the template; a run of pushes of consecutive identities becomes one loop."""
    ops: list[dict[str, str]] = []
    i = 0
    while i < len(actions):
        a = actions[i]
        outcome = getattr(a, "outcome", None)
        op = {"assumed": outcome.describe() if outcome is not None and outcome != Outcome() else ""}
        if isinstance(a, Push):
            j = i
            while (
                j + 1 < len(actions)
                and isinstance(nxt := actions[j + 1], Push)
                and nxt.outcome == a.outcome
                and nxt.identity == a.identity + (j + 1 - i)
            ):
                j += 1
            if j > i:
                end = a.identity + (j - i + 1)
                op |= {"op": "pushes", "first": _count(a.identity, symbolic, page), "end": _count(end, symbolic, page)}
            else:
                op |= {"op": "push", "arg": _rust_value(size, str(a.identity))}
            ops.append(op)
            i = j + 1
            continue
        if isinstance(a, Reserve):
            op |= {"op": "reserve", "arg": _count(a.additional, symbolic, page)}
        elif isinstance(a, ShrinkTo):
            op |= {"op": "shrink_to", "arg": _count(a.min_capacity, symbolic, page)}
        elif isinstance(a, Truncate):
            op |= {"op": "truncate", "arg": _count(a.len, symbolic, page)}
        elif isinstance(a, Clear):
            op |= {"op": "clear"}
        elif isinstance(a, Retain) and size != 0:
            op |= {"op": "retain", "arg": _rust_value(size, str(a.drop))}
        else:
            # A pop; zero-sized elements are indistinguishable, so dropping one (retain) is a pop too.
            assert isinstance(a, Pop | Retain)
            op |= {"op": "pop"}
        ops.append(op)
        i += 1
    return ops


# The values each property's check (templates/kunit_vec_checks.rs.j2) reads from before the call.
_VEC_PROBES: dict[str, frozenset[str]] = {
    "shrink.capacity-floor": frozenset({"cap", "len", "ret"}),
    "shrink.never-grows": frozenset({"cap"}),
    "shrink.elements-kept": frozenset({"len"}),
    "shrink.err-unchanged": frozenset({"cap", "len", "ptr", "ret"}),
    "shrink.vmalloc-page-rule": frozenset({"cap", "ptr", "vmalloc"}),
    "shrink.kmalloc-one-realloc": frozenset({"cap", "len", "vmalloc", "ret"}),
    "shrink.zst-noop": frozenset({"len", "ret"}),
    "shrink.target-zero-frees": frozenset({"cap", "len", "ret"}),
    "shrink.allocator-contract": frozenset({"len"}),
    "reserve.memory-safe": frozenset({"len", "ret"}),
    "shrink.no-overflow": frozenset(),
    "shrink.physical-never-grows": frozenset({"cap", "vmalloc", "ret"}),
    "shrink.change-lowers-physical": frozenset({"cap", "ptr", "vmalloc", "ret"}),
    "scenario.vmalloc-shrink-frees-pages": frozenset({"ptr", "ret"}),
    "scenario.no-page-freed-noop": frozenset({"ptr", "ret"}),
    "scenario.vmalloc-min-capacity-shrinks": frozenset({"ret"}),
}

# The checks that compute with PAGE_SIZE.
_PAGE_CHECKS = frozenset({"shrink.vmalloc-page-rule", "shrink.physical-never-grows", "shrink.change-lowers-physical"})


# --- binder's all_procs ---------------------------------------------------------------

# Each policy's rule in Rust: what it says, when it shrinks (None: never) and to what.
_POLICY_RUST: dict[str, tuple[str, str | None, str]] = {
    "v6": (
        "v6 (merged): shrink to twice the length once fewer than a quarter of the slots are used",
        "all_procs.len() < all_procs.capacity() / 4",
        "all_procs.len() * 2",
    ),
    "v4": (
        "v4: the same trigger, halving the capacity",
        "all_procs.len() < all_procs.capacity() / 4",
        "all_procs.capacity() / 2",
    ),
    "naive": (
        "naive (for comparison): shrink to fit as soon as half the slots are unused",
        "all_procs.len() < all_procs.capacity() / 2",
        "all_procs.len()",
    ),
    "never": ("never: the list does not shrink (before the series)", None, "all_procs.capacity()"),
}

# The seeded faults in the policy's rule, as models.binder.with_faults applies them (in this order):
# the rule is the test's own code, so the test can follow the faulted rule.
_RULE_FAULTS_RUST: dict[str, tuple[str, str | None]] = {
    "binder-shrink-dropped": ("trigger", None),
    "binder-trigger-inverted": ("trigger", "all_procs.len() >= all_procs.capacity() / 4"),
    "binder-trigger-cap-8": ("trigger", "all_procs.len() < all_procs.capacity() / 8"),
    "binder-target-cap-half": ("target", "all_procs.capacity() / 2"),
    "binder-target-len-8": ("target", "all_procs.len() * 8"),
    "binder-target-len-minus-one": ("target", "all_procs.len() - 1"),
}


def _policy_expr(trace: Trace) -> str:
    """The Python expression of a binder trace's policy (without its seeded faults)."""
    if trace.policy is None:
        return ""
    if trace.policy_rule is None:
        return f"policy_named({_quoted(trace.policy)})"
    return f"Policy.define({_quoted(trace.policy)}, {_quoted(trace.policy_rule)})"


def _policy_rust(trace: Trace) -> dict[str, str]:
    """The policy's rule as text, and its trigger and target in Rust (no trigger: it never shrinks)."""
    assert trace.policy is not None
    if trace.policy_rule is not None:
        # A policy the user defined: its rule, written in Rust over all_procs' len() and capacity().
        rust_trigger, rust_target = to_rust(trace.policy_rule, "all_procs.len()", "all_procs.capacity()")
        rule, trigger, target = f"{trace.policy}: `{trace.policy_rule}`", rust_trigger, rust_target
    elif trace.policy not in _POLICY_RUST:
        raise ValueError(f"no Rust rendering of binder policy {trace.policy!r}")
    else:
        rule, trigger, target = _POLICY_RUST[trace.policy]
    seeded = [f for f in _RULE_FAULTS_RUST if f in trace.faults]
    for fault in seeded:
        part, rust = _RULE_FAULTS_RUST[fault]
        if part == "trigger":
            trigger = rust
        else:
            assert rust is not None
            target = rust
    if seeded:
        rule = f"{rule}, with the seeded fault{'s' if len(seeded) > 1 else ''} {', '.join(seeded)}"
    return {"rule": rule, "trigger": trigger or "", "target": target}


def _faults_note(trace: Trace) -> str | None:
    """What a KUnit test can do with the trace's seeded faults: only the policy's rule is the test's own code."""
    if not trace.faults:
        return None
    rule = [f for f in trace.faults if trace.policy is not None and f in _RULE_FAULTS_RUST]
    others = [f for f in trace.faults if f not in rule]
    called = "kvec.rs and the allocators" if trace.policy is None else "kvec.rs, the allocators, binder's operations"
    parts = []
    if rule:
        parts.append(f"The policy's seeded fault{'s' if len(rule) > 1 else ''} ({', '.join(rule)}) is written into"
                     " `deregister`, so the test follows the faulted policy.")
    if others:
        parts.append(
            f"The model's seeded fault{'s' if len(others) > 1 else ''} ({', '.join(others)})"
            f" {'is' if len(others) == 1 else 'are'} in code the test only calls ({called}): the test runs the"
            " kernel's code there, and passes where the kernel does not have the fault."
        )
    return " ".join(parts)


def _binder_values(trace: Trace) -> dict[str, object]:
    """What the KUnit test of a binder trace says: the policy, the start, the operations and the final check."""
    steps = [s for s in trace.steps if isinstance(s, BinderStep)]
    plat = trace.platform
    odd_page = None
    if plat.page_size not in PAGE_SIZES:
        vm = [i for i, s in enumerate(steps, start=1) if s.post.buf is not None and s.post.buf.kind.value == "vmalloc"]
        where = (
            "every buffer of the trace is kmalloc memory, so a kernel with 4 KiB pages sees the same capacities"
            if not vm
            else f"the buffer after operation {vm[0]} is vmalloc memory there (kmalloc assumed to fail), which"
            " kvmalloc would not choose for so few bytes with real pages"
        )
        odd_page = {"size": plat.page_size, "where": where}

    kind, special = _BINDER_FINAL.get(trace.property_id, ("", 0))
    peak = _peak_step(steps) if trace.property_id == "binder.reclaim" else None
    if peak is not None and peak >= len(steps) - special:
        peak = None  # allocated by the final operation itself: not the peak's object
    cycle = trace.cycle_from if trace.property_id == "binder.no-thrash" else None
    ops = [
        _binder_op(s, trace, count=cycle is not None and i >= cycle) | {"cycle_start": i == cycle, "peak": i == peak}
        for i, s in enumerate(steps[: len(steps) - special])
    ]
    final: dict[str, object] | None = None
    if kind:
        last = steps[len(steps) - special :]
        final = {"kind": kind, "ops": [_binder_op(s, trace) for s in last]}
        if kind == "reclaim":
            n = last[0].post.len
            final |= {"len": n, "bound": reclaim_bound(plat, n), "peak": peak is not None}
        elif kind == "keeps_others":
            action = last[0].action
            expected = last[0].pre.elems.without(action.pid)
            plain = len(expected) <= 32 and not expected.has_garbage()
            values = ", ".join(str(expected.at(i)) for i in range(len(expected))) if plain else ""
            final |= {"expected_len": len(expected), "expected": values}
    return {
        **_policy_rust(trace),
        "odd_page": odd_page,
        "start": _binder_start(trace) if trace.start == "arbitrary" else None,
        "cycle": None if cycle is None else {"first": cycle + 1, "last": len(steps), "count": len(steps) - cycle},
        "ops": ops,
        "final": final,
        # Without a deregistration the test has no use for `deregister` (rustc: dead code).
        "deregisters": any(isinstance(s.action, Deregister) for s in steps),
    }


def _binder_start(trace: Trace) -> dict[str, object]:
    """State 0 chosen by the solver, to be built through `with_capacity` and pushes.

    `with_capacity(n)` from empty reserves exactly n, and pushes within the capacity do not reallocate, so
    length, capacity and processes are the trace's. The buffer's kind and physical size are the allocator's
    choice, as for any test.
    """
    s0, plat = trace.initial, trace.platform
    runs = [
        # An uncopied slot holds no process the trace names: any id that no operation uses stands for it.
        {"pid": "u64::MAX", "count": count, "garbage": True, "end": ""}
        if first == GARBAGE
        else {"pid": f"{first}", "count": count, "garbage": False, "end": f"{first + count}"}
        for first, count in s0.elems.runs
    ]
    return {
        "len": s0.len,
        "capacity": s0.capacity(plat),
        "kind": "no buffer" if s0.buf is None else f"a {describe_buffer(s0.buf)} buffer",
        "buffer": "" if s0.buf is None else s0.buf.kind.value,
        "huge": s0.len > HUGE_LEN or s0.layout_bytes(plat) > 1 << 30,
        "bytes": s0.layout_bytes(plat),
        "layout": s0.layout_len,
        "runs": runs,
    }


def _peak_step(steps: list[BinderStep]) -> int | None:
    """The operation that allocated the buffer the list holds at the end."""
    final = steps[-1].post.buf
    if final is None:
        return None
    for i, s in enumerate(steps):
        if s.post.buf is not None and s.post.buf.id == final.id:
            return i
    return None


def _assumed(s: BinderStep) -> str | None:
    """The allocator outcome the trace assumed, when it is not plain success and it mattered."""
    outcome = s.action.outcome
    if outcome == Outcome() or not (s.allocator_calls or not s.ok):
        return None
    return outcome.describe()


def _binder_op(s: BinderStep, trace: Trace, count: bool = False) -> dict[str, object]:
    """One operation for the template: what it is, what the trace assumed of the allocator, what it did."""
    return {
        "register": isinstance(s.action, Register),
        "pid": s.action.pid,
        "ok": s.ok,
        "note": _note(s, trace),
        "assumed": _assumed(s) or "",
        "count": count,  # counts whether it reallocates (a cycle's operations)
    }


# The properties whose last operations the test writes with a check: the template's macro, how many operations.
_BINDER_FINAL: dict[str, tuple[str, int]] = {
    "binder.no-immediate-regrow": ("regrow", 2),
    "binder.no-immediate-regrow.bmc": ("regrow", 2),
    "binder.waste-bound": ("waste", 1),
    "binder.waste-bound.bmc": ("waste", 1),
    "binder.reclaim": ("reclaim", 1),
    "binder.keeps-others": ("keeps_others", 1),
    "binder.failed-register-unchanged": ("failed_register", 1),
    "binder.page-rule-never-refuses": ("never_refused", 1),
}
