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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2

from models.allocator import Outcome
from models.binder import BinderStep, Deregister, Register
from models.elements import GARBAGE
from models.machine import PAGE_SIZES, USIZE_MAX
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate
from properties.binder import reclaim_bound
from verify.trace import Trace, describe_buffer

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
        names.setdefault("models.binder", set()).update({"BinderStep", "binder_step", "policy_named"})
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
        page_size=trace.page_size,
        binder=trace.policy is not None,
        policy=trace.policy or "",
        faults=sorted(trace.faults),
        summary=_string(summary, len("SUMMARY = ")),
        base=name_base(trace, WIDTH - len("def test__violation_reproduces() -> None:")),
        width=WIDTH,
        **values,
    )


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
    return "".join(f"{line}\n" for line in _comment(" ".join(text.split()), indent, prefix))


@dataclass
class _Rust:
    """A test body under construction: lines at an indentation, and the probes the check needs."""

    lines: list[str] = field(default_factory=list)
    indent: int = 4

    def add(self, *lines: str) -> None:
        self.lines += [(" " * self.indent + line) if line else "" for line in lines]

    def comment(self, text: str) -> None:
        self.lines += _comment(text, self.indent)


def as_kunit(trace: Trace) -> str:
    """A KUnit test case for rust/kernel/alloc/kvec.rs that replays `trace` and checks the property."""
    name = f"test_{name_base(trace, RUST_WIDTH - len('fn test_() -> Result {'))}"
    statement = _property_statement(trace)
    account = trace.one_line()
    if trace.policy is None:
        account = f"PAGE_SIZE {trace.page_size}: {account}"
    head = [
        *_comment(f"Regression test for {trace.property_id} on {trace.model}, generated by verify from a"
                  " counterexample.", 0),
        *_comment(f"Property: {_sentence(statement)}", 0),
        *_comment(f"Counterexample: {_sentence(account)}", 0),
        *_comment(_faults_note(trace) or "", 0),
        "//",
        *_comment(
            "Add it to the `#[macros::kunit_tests(rust_kvec)] mod tests` of rust/kernel/alloc/kvec.rs, whose"
            " `use super::*;` and `use crate::prelude::*;` it relies on. It checks the property, so it"
            " fails while the violation exists and passes once it is fixed.",
            0,
        ),
    ]
    body = _binder_body(trace) if trace.policy is not None else _vec_body(trace)
    return "\n".join([*head, "#[test]", f"fn {name}() -> Result {{", *body, "    Ok(())", "}"]) + "\n"


# --- single calls of shrink_to ----------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    trace: Trace
    t: str  # the element type
    argument: str  # the call's argument, as Rust: shrink_to's min_capacity or reserve's additional
    symbolic: bool  # sizes are written in PAGE_SIZE


def _count(n: int, ctx_symbolic: bool, page: int) -> str:
    """An element count as Rust: `usize::MAX`, `k * PAGE_SIZE + r` for the KUnit scenarios, else decimal."""
    if n == USIZE_MAX:
        return "usize::MAX"
    if ctx_symbolic and n >= page:
        k, r = divmod(n, page)
        text = "PAGE_SIZE" if k == 1 else f"{k} * PAGE_SIZE"
        return text if r == 0 else f"{text} + {r}"
    return f"{n}"


def _vec_body(trace: Trace) -> list[str]:
    last = trace.steps[-1]
    assert isinstance(last, Step) and isinstance(last.action, ShrinkTo | Reserve)
    plat = trace.platform
    size = plat.elem_size
    t = rust_type(size)
    symbolic = trace.property_id.startswith("kunit.")
    page = plat.page_size
    if isinstance(last.action, Reserve):
        method, argument = "reserve", last.action.additional
    else:
        method, argument = "shrink_to", last.action.min_capacity
    ctx = _Ctx(trace, t, _count(argument, symbolic, page), symbolic)
    r = _Rust()
    pre = last.pre

    uses_page = symbolic or trace.property_id in _PAGE_CHECKS
    if uses_page:
        r.add("use crate::page::PAGE_SIZE;", "")
    if not symbolic and size != 0:
        r.comment(
            f"The trace's numbers are for PAGE_SIZE {page}: with other pages the same sizes take other paths"
            " (kmalloc size classes, the vmalloc page rule)."
        )
        page_size = "PAGE_SIZE" if uses_page else "crate::page::PAGE_SIZE"
        r.add(f"if {page_size} != {page} {{", "    return Ok(());", "}", "")
    if pre.len > HUGE_LEN or pre.layout_bytes(plat) > 1 << 30:
        r.comment(
            f"The trace's state is too large for a unit test (len {pre.len}, {pre.layout_bytes(plat)} bytes of"
            " layout): the code below builds it literally, and will fail to allocate or run for long."
        )

    # --- build the state before the call -------------------------------------------
    if trace.setup:
        r.comment("The scenario's setup, from `KVVec::new()`.")
        r.add(f"let mut v = KVVec::<{t}>::new();")
        _vec_actions(r, trace.setup, size, symbolic, page)
    else:
        kind = "no buffer" if pre.buf is None else f"a {describe_buffer(pre.buf)} buffer"
        capacity = _count(pre.capacity(plat), False, page)
        r.comment(f"The state before the call: len {pre.len}, capacity {capacity}, {kind}.")
        r.add(f"let mut v = KVVec::<{t}>::with_capacity({_count(pre.layout_len, symbolic, page)}, GFP_KERNEL)?;")
        if pre.len:
            var = "_" if size == 0 else "i"
            r.add(
                f"for {var} in 0..{_count(pre.len, symbolic, page)} {{",
                f"    v.push({_rust_value(size, 'i')}, GFP_KERNEL)?;",
                "}",
            )
        if size != 0:
            r.add(f"assert_eq!(v.capacity(), {_count(pre.capacity(plat), symbolic, page)});")
    if pre.buf is not None and not trace.setup:
        r.comment(
            f"The trace starts from a {pre.buf.kind.value} buffer. kvmalloc tries kmalloc first and falls back"
            " to vmalloc only when that fails, which a test cannot force: on another run the buffer may be of"
            " the other kind, and the test then checks the other path."
        )
    r.add("")

    # --- the call ----------------------------------------------------------------------
    check, probes = _VEC_CHECKS.get(trace.property_id, _vec_fallback)(ctx)
    if "cap" in probes:
        r.add("let cap_before = v.capacity();")
    if "len" in probes:
        r.add("let len_before = v.len();")
    if "ptr" in probes:
        r.add("let ptr_before = v.as_ptr();")
    if "vmalloc" in probes:
        r.add(
            "// SAFETY: `is_vmalloc_addr` only compares the address with the vmalloc area's bounds; it does",
            "// not dereference it.",
            "let vmalloc_before = unsafe { crate::bindings::is_vmalloc_addr(v.as_ptr().cast()) };",
        )
    outcome = last.action.outcome
    r.comment(
        f"The trace assumed this call's allocator outcome: {outcome.describe()}; it returned"
        f" {'Ok' if last.ok else 'Err'} with capacity {_count(last.post.capacity(plat), False, page)}"
        f" ({'no buffer' if last.post.buf is None else describe_buffer(last.post.buf)})."
        " Allocator outcomes cannot be forced in KUnit."
    )
    call = f"v.{method}({ctx.argument}, GFP_KERNEL)"
    r.add(f"let ret = {call};" if "ret" in probes else f"let _ = {call};")
    if "vmalloc" in probes:
        r.add(
            "// SAFETY: as above.",
            "let vmalloc_after = unsafe { crate::bindings::is_vmalloc_addr(v.as_ptr().cast()) };",
        )
    r.add("")
    for line in check:
        if line.startswith("//"):
            r.comment(line[3:])
        else:
            r.add(line)
    return r.lines


def _vec_actions(r: _Rust, actions: Sequence[Action], size: int, symbolic: bool, page: int) -> None:
    """Setup actions as Rust; a run of pushes of consecutive identities becomes a loop."""
    i = 0
    while i < len(actions):
        a = actions[i]
        outcome = getattr(a, "outcome", None)
        if outcome is not None and outcome != Outcome():
            r.comment(f"The trace assumed: {outcome.describe()}. A test cannot force that.")
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
                first, end = a.identity, a.identity + (j - i + 1)
                var = "_" if size == 0 else "i"
                lo = _count(first, symbolic, page)
                r.add(
                    f"for {var} in {lo}..{_count(end, symbolic, page)} {{",
                    f"    v.push({_rust_value(size, 'i')}, GFP_KERNEL)?;",
                    "}",
                )
            else:
                r.add(f"v.push({_rust_value(size, str(a.identity))}, GFP_KERNEL)?;")
            i = j + 1
            continue
        if isinstance(a, Reserve):
            r.add(f"v.reserve({_count(a.additional, symbolic, page)}, GFP_KERNEL)?;")
        elif isinstance(a, ShrinkTo):
            r.add(f"v.shrink_to({_count(a.min_capacity, symbolic, page)}, GFP_KERNEL)?;")
        elif isinstance(a, Pop):
            r.add("v.pop();")
        elif isinstance(a, Truncate):
            r.add(f"v.truncate({_count(a.len, symbolic, page)});")
        elif isinstance(a, Clear):
            r.add("v.clear();")
        elif isinstance(a, Retain):
            value = _rust_value(size, str(a.drop))
            if size == 0:
                # Zero-sized elements are indistinguishable: dropping one is a pop.
                r.add("v.pop();")
            else:
                r.add(f"v.retain(|e| *e != {value});")
        i += 1


def _elements_check(ctx: _Ctx) -> list[str]:
    if ctx.trace.elem_size == 0:
        return ["assert_eq!(v.len(), len_before);"]
    return [
        "assert_eq!(v.len(), len_before);",
        "for (i, e) in v.iter().enumerate() {",
        f"    assert_eq!(*e, {_rust_value(ctx.trace.elem_size, 'i')});",
        "}",
    ]


def _target(ctx: _Ctx) -> str:
    return f"let target = core::cmp::max(len_before, {ctx.argument});"


def _physical_note(ctx: _Ctx) -> str:
    last = ctx.trace.steps[-1]
    pre = "no buffer" if last.pre.buf is None else describe_buffer(last.pre.buf)
    post = "no buffer" if last.post.buf is None else describe_buffer(last.post.buf)
    return (
        "// Physical memory is not observable from safe Rust (ksize() of a kmalloc object, the pages of a"
        f" vmalloc area). In the trace the buffer went from {pre} to {post}."
    )


def _grown_pages_check() -> list[str]:
    """A vmalloc buffer replaced by a kmalloc object above two pages, which takes 2^order pages."""
    return [
        "// The kind of buffer is observable: kmalloc serves more than two pages with 2^order pages, so a"
        " vmalloc buffer replaced by such a kmalloc object can hold more pages than the vmalloc area did.",
        "let size = core::mem::size_of::<T>();",
        "let pages_before = (cap_before * size).div_ceil(PAGE_SIZE);",
        "let bytes_after = v.capacity() * size;",
        "if ret.is_ok() && vmalloc_before && !vmalloc_after && bytes_after > 2 * PAGE_SIZE {",
        "    assert!(bytes_after.div_ceil(PAGE_SIZE).next_power_of_two() <= pages_before);",
        "}",
    ]


Check = Callable[[_Ctx], tuple[list[str], set[str]]]


def _typed(lines: list[str], ctx: _Ctx) -> list[str]:
    return [line.replace("size_of::<T>()", f"size_of::<{ctx.t}>()") for line in lines]


_VEC_CHECKS: dict[str, Check] = {
    "shrink.capacity-floor": lambda ctx: (
        [
            _target(ctx),
            "if ret.is_ok() {",
            "    if cap_before > target {",
            "        assert!(v.capacity() >= target);",
            "    } else {",
            "        assert_eq!(v.capacity(), cap_before);",
            "    }",
            "}",
        ],
        {"cap", "len", "ret"},
    ),
    "shrink.never-grows": lambda ctx: (["assert!(v.capacity() <= cap_before);"], {"cap"}),
    "shrink.elements-kept": lambda ctx: (_elements_check(ctx), {"len"}),
    "shrink.err-unchanged": lambda ctx: (
        [
            "if ret.is_err() {",
            "    assert_eq!(v.capacity(), cap_before);",
            "    assert_eq!(v.len(), len_before);",
            "    assert_eq!(v.as_ptr(), ptr_before);",
            "}",
            "// Not observable here: that nothing was freed or leaked on the way (KASAN and kmemleak see"
            " that).",
        ],
        {"cap", "len", "ptr", "ret"},
    ),
    "shrink.vmalloc-page-rule": lambda ctx: (
        _typed(
            [
                "// A replaced vmalloc buffer frees at least one page, counted by layout bytes.",
                "if vmalloc_before && v.as_ptr() != ptr_before {",
                "    let pages = |cap: usize| (cap * core::mem::size_of::<T>()).div_ceil(PAGE_SIZE);",
                "    assert!(pages(v.capacity()) < pages(cap_before));",
                "}",
            ],
            ctx,
        ),
        {"cap", "ptr", "vmalloc"},
    ),
    "shrink.kmalloc-one-realloc": lambda ctx: (
        [
            "// The number of allocator calls is not observable; the resulting layout is.",
            _target(ctx),
            "if !vmalloc_before && cap_before > target {",
            "    if ret.is_ok() {",
            "        assert_eq!(v.capacity(), target);",
            "    } else {",
            "        assert_eq!(v.capacity(), cap_before);",
            "    }",
            "}",
        ],
        {"cap", "len", "vmalloc", "ret"},
    ),
    "shrink.zst-noop": lambda ctx: (
        [
            "// That no allocator call is made is not observable; the result and the state are.",
            "assert!(ret.is_ok());",
            "assert_eq!(v.capacity(), usize::MAX);",
            "assert_eq!(v.len(), len_before);",
        ],
        {"len", "ret"},
    ),
    "shrink.target-zero-frees": lambda ctx: (
        [
            _target(ctx),
            "if target == 0 && cap_before > 0 {",
            "    assert!(ret.is_ok());",
            "    assert_eq!(v.capacity(), 0);",
            "}",
            "// That the old buffer was freed is not observable here (kmemleak sees a leak).",
        ],
        {"cap", "len", "ret"},
    ),
    "shrink.allocator-contract": lambda ctx: (
        [
            "// Which allocations are live, and the layouts passed to free, are not observable from Rust;"
            " KASAN and kmemleak report a double free, a wrong size or a leak. Observable: a replaced buffer"
            " holds the elements, so the copy came before the free.",
            *_elements_check(ctx),
        ],
        {"len"},
    ),
    "reserve.memory-safe": lambda ctx: (
        [
            "// Memory safety is not observable from safe Rust: KASAN reports a copy out of bounds, a use after"
            " free or a bad free, kmemleak a leak. Observable: the elements moved with the buffer, and an Ok"
            " leaves room for the additional elements.",
            *_elements_check(ctx),
            "if ret.is_ok() {",
            f"    assert!(v.capacity() - v.len() >= {ctx.argument});",
            "}",
        ],
        {"len", "ret"},
    ),
    "shrink.no-overflow": lambda ctx: (
        [
            "// With CONFIG_RUST_OVERFLOW_CHECKS=y an overflow in shrink_to panics and fails the test;"
            " otherwise it is not observable. The type invariant still has to hold.",
            "assert!(v.len() <= v.capacity());",
        ],
        set(),
    ),
    "shrink.physical-never-grows": lambda ctx: (
        _typed([_physical_note(ctx), *_grown_pages_check()], ctx),
        {"cap", "vmalloc", "ret"},
    ),
    "shrink.change-lowers-physical": lambda ctx: (
        _typed(
            [
                _physical_note(ctx),
                "// Observable: krealloc returns the same object when the new size fits in its ksize(), so"
                " the same pointer after a change of layout means no memory was returned.",
                "if ret.is_ok() && v.capacity() != cap_before {",
                "    assert_ne!(v.as_ptr(), ptr_before);",
                "}",
                *_grown_pages_check(),
            ],
            ctx,
        ),
        {"cap", "ptr", "vmalloc", "ret"},
    ),
    "kunit.vmalloc-shrink-frees-pages": lambda ctx: (
        [
            "// Physical memory is not observable; that the buffer was replaced (the vmalloc path's deep"
            " copy) is.",
            "if ret.is_ok() {",
            "    assert!(v.len() <= v.capacity());",
            "    assert!(v.capacity() < 4 * PAGE_SIZE);",
            "    assert_ne!(v.as_ptr(), ptr_before);",
            "}",
        ],
        {"ptr", "ret"},
    ),
    "kunit.empty-to-zero": lambda ctx: (
        ["assert!(ret.is_ok());", "assert_eq!(v.capacity(), 0);"],
        {"ret"},
    ),
    "kunit.no-page-freed-noop": lambda ctx: (
        [
            "// That no allocator call is made shows as the unchanged pointer and capacity.",
            "assert!(ret.is_ok());",
            "assert_eq!(v.capacity(), 3 * PAGE_SIZE);",
            "assert_eq!(v.as_ptr(), ptr_before);",
        ],
        {"ptr", "ret"},
    ),
    "kunit.min-capacity-kept": lambda ctx: (
        [
            "if ret.is_ok() {",
            "    assert!(v.capacity() >= 2 * PAGE_SIZE);",
            "    assert!(v.capacity() < 4 * PAGE_SIZE);",
            "}",
        ],
        {"ret"},
    ),
}

# The checks that compute with PAGE_SIZE.
_PAGE_CHECKS = frozenset({"shrink.vmalloc-page-rule", "shrink.physical-never-grows", "shrink.change-lowers-physical"})


def _vec_fallback(ctx: _Ctx) -> tuple[list[str], set[str]]:
    return (
        [
            f"// verify has no Rust rendering of {ctx.trace.property_id}: the operations above reproduce the"
            " trace; only the type invariant is checked.",
            "assert!(v.len() <= v.capacity());",
        ],
        set(),
    )


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
}


def _policy_rust(trace: Trace) -> tuple[str, list[str]]:
    """The policy's rule as text and as the Rust lines that open its `if`, with its rule faults."""
    assert trace.policy is not None
    if trace.policy not in _POLICY_RUST:
        raise ValueError(f"no Rust rendering of binder policy {trace.policy!r}")
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
    if trigger is None:
        return rule, []
    return rule, [f"if {trigger} {{", f"    let target = {target};"]


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


def _binder_body(trace: Trace) -> list[str]:
    rule, condition = _policy_rust(trace)
    steps = [s for s in trace.steps if isinstance(s, BinderStep)]
    plat = trace.platform
    r = _Rust()

    doc = (
        f"binder's deregistration (drivers/android/binder/context.rs), policy {rule}: `retain` drops the"
        " process, then the policy may call `shrink_to`, whose error binder ignores. Returns whether that"
        " `shrink_to` returned Ok, or `None` if the policy did not call it."
    )
    r.add(*(f"/// {line}" for line in textwrap.wrap(doc, RUST_WIDTH - r.indent - 4, break_on_hyphens=False)))
    r.add(
        "fn deregister(all_procs: &mut KVVec<u64>, pid: u64) -> Option<bool> {",
        "    all_procs.retain(|p| *p != pid);",
    )
    if condition:
        r.add(*(f"    {line}" for line in condition))
        r.add("        return Some(all_procs.shrink_to(target, GFP_KERNEL).is_ok());", "    }")
    r.add("    None", "}", "")

    r.comment(
        "`all_procs` is a `KVVec<Arc<Process>>`; `u64` process ids have the same 8-byte size. Registering"
        " pushes the process; deregistering is the function above."
    )
    if plat.page_size not in PAGE_SIZES:
        vm = [i for i, s in enumerate(steps, start=1) if s.post.buf is not None and s.post.buf.kind.value == "vmalloc"]
        where = (
            "every buffer of the trace is kmalloc memory, so a kernel with 4 KiB pages sees the same capacities"
            if not vm
            else f"the buffer after operation {vm[0]} is vmalloc memory there (kmalloc assumed to fail), which"
            " kvmalloc would not choose for so few bytes with real pages"
        )
        r.comment(
            f"The trace comes from the explicit-state instance with PAGE_SIZE {plat.page_size} B, a page size"
            f" no kernel has: {where}."
        )
    if trace.start == "arbitrary":
        _binder_start(r, trace)
    else:
        r.add("let mut all_procs = KVVec::<u64>::new();")

    final = _BINDER_FINAL.get(trace.property_id)
    special = final.steps if final is not None else 0
    peak = _peak_step(steps) if trace.property_id == "binder.reclaim" else None
    if peak is not None and peak >= len(steps) - special:
        peak = None  # allocated by the final operation itself: not the peak's object
    cycle = trace.cycle_from if trace.property_id == "binder.no-thrash" else None
    if cycle is not None:
        r.add("let mut reallocations = 0;")
    for index, s in enumerate(steps):
        if index == len(steps) - special and final is not None:
            break
        if cycle is not None and index == cycle:
            r.comment(f"The cycle: operations {cycle + 1} to {len(steps)} each reallocate in the trace.")
        _binder_op(r, s, trace, count=cycle is not None and index >= cycle)
        if peak is not None and index == peak:
            r.add(
                "// The buffer the list holds at the end is allocated here, for the peak capacity.",
                "let peak_ptr = all_procs.as_ptr();",
                "let peak_cap = all_procs.capacity();",
            )
    if cycle is not None:
        r.add(
            "",
            f"assert!(reallocations < {len(steps) - cycle}, \"every operation of the cycle reallocated\");",
        )
    if final is not None:
        r.add("")
        final.emit(r, steps[len(steps) - special :], trace, peak)
    elif cycle is None:
        r.add("")
        r.comment(
            f"verify has no Rust rendering of {trace.property_id}: the operations above reproduce the trace;"
            " only the type invariant is checked."
        )
        r.add("assert!(all_procs.len() <= all_procs.capacity());")
    return r.lines


def _binder_start(r: _Rust, trace: Trace) -> None:
    """State 0 chosen by the solver, built through `with_capacity` and pushes.

    `with_capacity(n)` from empty reserves exactly n, and pushes within the capacity do not reallocate, so
    length, capacity and processes are the trace's. The buffer's kind and physical size are the allocator's
    choice, as for any test.
    """
    s0, plat = trace.initial, trace.platform
    kind = "no buffer" if s0.buf is None else f"a {describe_buffer(s0.buf)} buffer"
    r.comment(
        f"State 0 is an arbitrary state satisfying the type invariants, chosen by the solver: len {s0.len},"
        f" capacity {s0.capacity(plat)}, {kind}. `with_capacity` and pushes build the same length, capacity"
        " and processes."
    )
    if s0.buf is not None:
        r.comment(
            f"The trace's buffer is {s0.buf.kind.value} memory. kvmalloc tries kmalloc first and falls back to"
            " vmalloc only when that fails, which a test cannot force: on another run the buffer may be of the"
            " other kind, and the test then checks the other path."
        )
    if s0.len > HUGE_LEN or s0.layout_bytes(plat) > 1 << 30:
        r.comment(
            f"The state is too large for a unit test (len {s0.len}, {s0.layout_bytes(plat)} bytes of layout): the"
            " code below builds it literally, and will fail to allocate or run for long."
        )
    if s0.layout_len == 0:
        r.add("let mut all_procs = KVVec::<u64>::new();")
        return
    r.add(f"let mut all_procs = KVVec::<u64>::with_capacity({s0.layout_len}, GFP_KERNEL)?;")
    for first, count in s0.elems.runs:
        # An uncopied slot holds no process the trace names: any id that no operation uses stands for it.
        pid = "u64::MAX" if first == GARBAGE else f"{first}"
        if count == 1:
            r.add(f"all_procs.push({pid}, GFP_KERNEL)?;")
        elif first == GARBAGE:
            r.add(f"for _ in 0..{count} {{", f"    all_procs.push({pid}, GFP_KERNEL)?;", "}")
        else:
            r.add(f"for pid in {first}..{first + count} {{", "    all_procs.push(pid, GFP_KERNEL)?;", "}")
    r.add(f"assert_eq!(all_procs.capacity(), {s0.layout_len});")


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


def _binder_op(r: _Rust, s: BinderStep, trace: Trace, count: bool = False) -> None:
    note = _note(s, trace)
    assumed = _assumed(s)
    if assumed:
        r.comment(f"The trace assumed: {assumed}. A test cannot force that.")
    if count:
        r.add("let before = (all_procs.capacity(), all_procs.as_ptr());")
    suffix = f" // {note}" if note else ""
    if isinstance(s.action, Register):
        if s.ok:
            r.add(f"all_procs.push({s.action.pid}, GFP_KERNEL)?;{suffix}")
        else:
            r.add(f"let _ = all_procs.push({s.action.pid}, GFP_KERNEL);{suffix}")
    else:
        r.add(f"deregister(&mut all_procs, {s.action.pid});{suffix}")
    if count:
        r.add(
            "if (all_procs.capacity(), all_procs.as_ptr()) != before {",
            "    reallocations += 1;",
            "}",
        )


@dataclass(frozen=True)
class _Final:
    """How the last operations of a binder trace are written, with the property's check."""

    steps: int
    emit: Callable[[_Rust, list[BinderStep], Trace, int | None], None]


def _emit_regrow(r: _Rust, last: list[BinderStep], trace: Trace, _peak: int | None) -> None:
    d, g = last
    assert isinstance(d.action, Deregister) and isinstance(g.action, Register)
    r.add("let cap_before_dereg = all_procs.capacity();")
    _binder_op(r, d, trace)
    r.add(
        "let shrank = all_procs.capacity() < cap_before_dereg;",
        "let cap_before = all_procs.capacity();",
        "let ptr_before = all_procs.as_ptr();",
    )
    _binder_op(r, g, trace)
    r.add(
        "// After a deregistration that shrank the list, the next registration does not reallocate.",
        "if shrank {",
        "    assert_eq!(all_procs.capacity(), cap_before);",
        "    assert_eq!(all_procs.as_ptr(), ptr_before);",
        "}",
    )


def _emit_dereg_with_result(r: _Rust, s: BinderStep, trace: Trace) -> None:
    assert isinstance(s.action, Deregister)
    assumed = _assumed(s)
    if assumed:
        r.comment(f"The trace assumed: {assumed}. A test cannot force that.")
    note = _note(s, trace)
    r.add(
        "let cap_before = all_procs.capacity();",
        f"let shrink = deregister(&mut all_procs, {s.action.pid});" + (f" // {note}" if note else ""),
    )


def _emit_waste(r: _Rust, last: list[BinderStep], trace: Trace, _peak: int | None) -> None:
    _emit_dereg_with_result(r, last[0], trace)
    r.add(
        "// Unless its shrink_to failed or the vmalloc page rule refused it, a deregistration leaves",
        "// capacity < 4 * (len + 1).",
        "let failed = shrink == Some(false);",
        "let refused = shrink == Some(true) && all_procs.capacity() == cap_before;",
        "if !failed && !refused {",
        "    assert!(all_procs.capacity() < 4 * (all_procs.len() + 1));",
        "}",
    )


def _emit_reclaim(r: _Rust, last: list[BinderStep], trace: Trace, peak: int | None) -> None:
    s = last[0]
    assert isinstance(s.action, Deregister)
    assumed = _assumed(s)
    if assumed:
        r.comment(f"The trace assumed: {assumed}. A test cannot force that.")
    note = _note(s, trace)
    r.add(f"let shrink = deregister(&mut all_procs, {s.action.pid});" + (f" // {note}" if note else ""))
    n = s.post.len
    bound = reclaim_bound(trace.platform, n)
    r.comment(
        "Physical memory is not observable from safe Rust. The property bounds it by what a fresh kmalloc of"
        f" 4 * (len + 1) processes takes: for the trace's len {n}, {bound} bytes. The layout's bytes are a"
        " lower bound of the memory held, so they must stay within it."
    )
    r.add(
        f"let bound = {bound};",
        "if shrink != Some(false) {",
        "    assert_eq!(all_procs.len(), " + f"{n});",
        "    assert!(all_procs.capacity() * core::mem::size_of::<u64>() <= bound);",
    )
    if peak is not None:
        r.add(
            "    // Observable too: the list still holds the object kmalloc'd for `peak_cap` processes (the",
            "    // same pointer: krealloc shrank it in place), which holds at least peak_cap * 8 bytes.",
            "    assert!(all_procs.as_ptr() != peak_ptr || peak_cap * core::mem::size_of::<u64>() <= bound);",
        )
    r.add("}")


def _emit_keeps_others(r: _Rust, last: list[BinderStep], trace: Trace, _peak: int | None) -> None:
    s = last[0]
    assert isinstance(s.action, Deregister)
    _binder_op(r, s, trace)
    expected = s.pre.elems.without(s.action.pid)
    if len(expected) == 0:
        r.add("assert!(all_procs.is_empty());")
    elif len(expected) <= 32 and not expected.has_garbage():
        values = ", ".join(str(expected.at(i)) for i in range(len(expected)))
        r.add(f"assert_eq!(all_procs, [{values}]);")
    else:
        r.add(f"assert_eq!(all_procs.len(), {len(expected)});")


def _emit_failed_register(r: _Rust, last: list[BinderStep], trace: Trace, _peak: int | None) -> None:
    s = last[0]
    assert isinstance(s.action, Register)
    assumed = _assumed(s)
    if assumed:
        r.comment(f"The trace assumed: {assumed}. A test cannot force that.")
    r.add(
        "let before = (all_procs.len(), all_procs.capacity(), all_procs.as_ptr());",
        f"if all_procs.push({s.action.pid}, GFP_KERNEL).is_err() {{",
        "    assert!((all_procs.len(), all_procs.capacity(), all_procs.as_ptr()) == before);",
        "}",
    )


def _emit_never_refused(r: _Rust, last: list[BinderStep], trace: Trace, _peak: int | None) -> None:
    _emit_dereg_with_result(r, last[0], trace)
    r.add(
        "// When the policy asks for a shrink, the vmalloc page rule does not refuse it.",
        "assert!(!(shrink == Some(true) && all_procs.capacity() == cap_before));",
    )


_BINDER_FINAL: dict[str, _Final] = {
    "binder.no-immediate-regrow": _Final(2, _emit_regrow),
    "binder.no-immediate-regrow.bmc": _Final(2, _emit_regrow),
    "binder.waste-bound": _Final(1, _emit_waste),
    "binder.waste-bound.bmc": _Final(1, _emit_waste),
    "binder.reclaim": _Final(1, _emit_reclaim),
    "binder.keeps-others": _Final(1, _emit_keeps_others),
    "binder.failed-register-unchanged": _Final(1, _emit_failed_register),
    "binder.page-rule-never-refuses": _Final(1, _emit_never_refused),
}
