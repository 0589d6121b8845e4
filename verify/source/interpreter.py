"""One walk of a function's syntax tree over an abstract value domain.

The interpreter knows Rust's control flow (let, if/else, match, return, `?`,
unsafe blocks) and what the kernel calls in `shrink_to` mean; the domain knows
what a value is. A concrete domain answers every branch from its values; a
symbolic one answers from a decision list (`Domain.decide`), so one walk per
path explores every path. Anything else is a `SourceError` naming the file,
line, column and construct: never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import tree_sitter

from models.allocator import Fn
from verify.source.locate import Function, Unsupported


class Domain(Protocol):
    """The values the interpreter computes with: Python ints and bools, or Z3 terms."""

    def const(self, n: int) -> Any: ...
    def arith(self, op: str, a: Any, b: Any) -> Any: ...  # + - * / %, a wrap-around is noted
    def checked(self, op: str, a: Any, b: Any) -> tuple[Any, Any]: ...  # (no overflow?, wrapped value)
    def compare(self, op: str, a: Any, b: Any) -> Any: ...
    def logic(self, op: str, a: Any, b: Any) -> Any: ...  # && ||
    def negate(self, a: Any) -> Any: ...
    def select(self, cond: Any, then: Any, other: Any) -> Any: ...
    def div_ceil(self, a: Any, b: Any) -> Any: ...
    def decide(self, cond: Any) -> bool: ...
    def elem_size(self) -> Any: ...
    def page_size(self) -> Any: ...
    def capacity(self, layout_len: Any) -> Any: ...
    def layout_fits(self, n: Any) -> Any: ...  # ArrayLayout::new's check: n * size <= isize::MAX
    def layout_bytes(self, n: Any) -> Any: ...
    def is_vmalloc(self, alloc: Any) -> Any: ...
    def dangling(self) -> Any: ...
    def allocator(self, fn: Fn, alloc: Any, new_bytes: Any, old_bytes: Any) -> tuple[Any, Any]: ...
    def copy(self, src: Any, dst: Any, nbytes: Any) -> None: ...


# --- values besides the domain's integers and booleans ---------------------


@dataclass(frozen=True)
class Unit:
    pass


@dataclass(frozen=True)
class Token:
    """A value the transition does not depend on: an error type, GFP flags, a NUMA node."""

    name: str


@dataclass(frozen=True)
class Layout:
    """`ArrayLayout<T>` (and the `Layout` made from it): an element count."""

    len: Any


@dataclass(frozen=True)
class Ptr:
    """A pointer (`NonNull`, raw): the allocation it points to; the domain's dangling value otherwise."""

    alloc: Any


@dataclass(frozen=True)
class Fallible:
    """A `Result` or an `Option`: `ok` is a domain boolean (or a Python bool when known)."""

    ok: Any
    value: Any
    error: Any
    option: bool = False


@dataclass(frozen=True)
class SelfRef:
    pass


class Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


UNIT = Unit()
CONSTANTS = {
    "PAGE_SIZE": "page",
    "kernel::page::PAGE_SIZE": "page",
    "page::PAGE_SIZE": "page",
    "NumaNode::NO_NODE": "token",
    "AllocError": "token",
    "LayoutError": "token",
    "GFP_KERNEL": "token",
}
MAX = {"core::cmp::max", "cmp::max", "max"}
MIN = {"core::cmp::min", "cmp::min", "min"}
SIZE_OF = {"core::mem::size_of", "mem::size_of", "size_of"}
COPY = {"ptr::copy_nonoverlapping", "core::ptr::copy_nonoverlapping"}
BINARY = {"+", "-", "*", "/", "%"}
COMPARE = {"<", "<=", ">", ">=", "==", "!="}


@dataclass
class Interpreter:
    """Runs one function on one path. `fields` are `self`'s: len, layout (a Layout), ptr (a Ptr)."""

    fn: Function
    domain: Domain
    fields: dict[str, Any]
    lines: list[int] = field(default_factory=list)
    possible_effects: set[str] = field(default_factory=set)  # what this path's allocator calls may have done

    def run(self, args: list[Any]) -> Any:
        """The function's value for these arguments (after `self`, in order)."""
        params = self.fn.node.child_by_field_name("parameters")
        body = self.fn.node.child_by_field_name("body")
        assert params is not None and body is not None
        env: dict[str, Any] = {}
        given = [p for p in params.named_children if p.type not in ("self_parameter", "line_comment", "block_comment")
                 and not _is_self(p)]
        if len(given) != len(args):
            self._unsupported(params, f"signature (expected {len(args)} parameters after self)")
        for param, arg in zip(given, args, strict=True):
            pattern = param.child_by_field_name("pattern")
            if param.type != "parameter" or pattern is None or pattern.type != "identifier":
                self._unsupported(param, "parameter pattern")
            assert pattern is not None
            env[self._text(pattern)] = arg
        try:
            return self._block(body, env)
        except Return as r:
            return r.value

    # --- errors and text ---------------------------------------------------

    def _text(self, node: tree_sitter.Node) -> str:
        return self.fn.text(node)

    def _unsupported(self, node: tree_sitter.Node, what: str) -> Any:
        raise Unsupported(self.fn.path, node, f"unsupported {what}: `{_excerpt(self._text(node))}`")

    # --- statements --------------------------------------------------------

    def _block(self, node: tree_sitter.Node, outer: dict[str, Any]) -> Any:
        env = dict(outer)  # a block's lets go out of scope at its end
        declared: set[str] = set()
        value: Any = UNIT
        children = [c for c in node.named_children if c.type not in ("line_comment", "block_comment")]
        for i, stmt in enumerate(children):
            last = i == len(children) - 1
            self.lines.append(stmt.start_point[0] + 1)
            if stmt.type == "let_declaration":
                declared.add(self._let(stmt, env))
                value = UNIT
            elif stmt.type == "expression_statement":
                inner = stmt.named_children[0]
                value = self._eval(inner, env)
                if stmt.children[-1].type == ";":
                    value = UNIT
            elif stmt.type == "empty_statement":
                value = UNIT
            elif last and stmt.type.endswith("expression") or stmt.type in ("identifier", "integer_literal", "self"):
                value = self._eval(stmt, env)
            else:
                self._unsupported(stmt, f"statement ({stmt.type})")
            # Assignments to an outer local change it there too; a let here only shadows it.
            for name in outer.keys() - declared:
                outer[name] = env[name]
        return value

    def _let(self, stmt: tree_sitter.Node, env: dict[str, Any]) -> str:
        pattern = stmt.child_by_field_name("pattern")
        value = stmt.child_by_field_name("value")
        if stmt.child_by_field_name("alternative") is not None:
            self._unsupported(stmt, "let-else")
        if pattern is None or value is None:
            self._unsupported(stmt, "let without a value")
        assert pattern is not None and value is not None
        if pattern.type == "mut_pattern":
            pattern = pattern.named_children[-1]
        if pattern.type != "identifier":
            self._unsupported(pattern, "let pattern")
        name = self._text(pattern)
        env[name] = self._eval(value, env)
        return name

    # --- expressions -------------------------------------------------------

    def _eval(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        kind = node.type
        d = self.domain
        if kind == "integer_literal":
            return d.const(_integer(self._text(node)))
        if kind == "boolean_literal":
            return self._text(node) == "true"
        if kind == "unit_expression":
            return UNIT
        if kind == "parenthesized_expression":
            return self._eval(node.named_children[0], env)
        if kind == "self":
            return SelfRef()
        if kind in ("identifier", "scoped_identifier"):
            return self._name(node, env)
        if kind == "field_expression":
            return self._field(node, env)
        if kind == "unsafe_block":
            # An unsafe block's SAFETY comment is documentation, not semantics.
            return self._block(node.named_children[0], env)
        if kind == "block":
            return self._block(node, env)
        if kind == "if_expression":
            return self._if(node, env)
        if kind == "match_expression":
            return self._match(node, env)
        if kind == "return_expression":
            value = UNIT if not node.named_children else self._eval(node.named_children[0], env)
            raise Return(value)
        if kind == "try_expression":
            return self._try(node, self._eval(node.named_children[0], env))
        if kind == "unary_expression":
            if self._text(node.children[0]) != "!":
                return self._unsupported(node, "unary operator")
            return d.negate(self._eval(node.named_children[0], env))
        if kind == "binary_expression":
            return self._binary(node, env)
        if kind == "assignment_expression":
            return self._assign(node, env)
        if kind == "call_expression":
            return self._call(node, env)
        return self._unsupported(node, _KIND_NAMES.get(kind, f"expression ({kind})"))

    def _name(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        name = _strip_generics(self._text(node))
        if name in env:
            return env[name]
        if name == "None":
            return Fallible(False, None, None, option=True)
        if CONSTANTS.get(name) == "page":
            return self.domain.page_size()
        if CONSTANTS.get(name) == "token":
            return Token(name)
        return self._unsupported(node, "name")

    def _field(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        value = node.child_by_field_name("value")
        name = node.child_by_field_name("field")
        assert value is not None and name is not None
        if value.type == "self" and self._text(name) in self.fields:
            return self.fields[self._text(name)]
        return self._unsupported(node, "field")

    def _if(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        cond = node.child_by_field_name("condition")
        then = node.child_by_field_name("consequence")
        other = node.child_by_field_name("alternative")
        assert cond is not None and then is not None
        if cond.type in ("let_condition", "let_chain"):
            return self._unsupported(cond, "if let")
        if self.domain.decide(self._eval(cond, env)):
            return self._block(then, env)
        if other is None:
            return UNIT
        (branch,) = other.named_children
        return self._eval(branch, env)

    def _match(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        scrutinee = node.child_by_field_name("value")
        body = node.child_by_field_name("body")
        assert scrutinee is not None and body is not None
        value = self._eval(scrutinee, env)
        if not isinstance(value, Fallible):
            return self._unsupported(scrutinee, "match on a value that is not a Result or an Option")
        remaining = {True, False}  # the variants (ok or not) no arm has taken yet
        for arm in body.named_children:
            if arm.type != "match_arm":
                continue
            pattern = arm.child_by_field_name("pattern")
            result = arm.child_by_field_name("value")
            assert pattern is not None and result is not None
            if pattern.child_by_field_name("condition") is not None:
                return self._unsupported(pattern, "match guard")
            variants, bindings = self._arm(pattern, value)
            if not variants & remaining:
                continue
            # The last arm that can match is taken without a decision: the match is exhaustive.
            matches = value.ok if True in variants else self.domain.negate(value.ok)
            if variants >= remaining or self.domain.decide(matches):
                self.lines.append(arm.start_point[0] + 1)
                return self._eval(result, {**env, **bindings})
            remaining -= variants
        return self._unsupported(node, "match that is not exhaustive over Ok/Err or Some/None")

    def _arm(self, pattern: tree_sitter.Node, value: Fallible) -> tuple[set[bool], dict[str, Any]]:
        """The variants the arm matches (True: Ok or Some) and what it binds."""
        inner = pattern.named_children[0] if pattern.named_children else pattern
        text = self._text(inner)
        if text == "_":
            return {True, False}, {}
        if text == "None" and value.option:
            return {False}, {}
        if inner.type != "tuple_struct_pattern":
            return self._unsupported(inner, "match pattern")
        head = self._text(inner.named_children[0])
        # `_` is not a named node: take the pattern's parts without the punctuation.
        args = [c for c in inner.children[1:] if c.type not in ("(", ")", ",")]
        if len(args) != 1 or self._text(args[0]) != "_" and args[0].type != "identifier":
            return self._unsupported(inner, "match pattern")
        bound = self._text(args[0])
        if head in ("Ok", "Some") and (head == "Some") == value.option:
            return {True}, ({} if bound == "_" else {bound: value.value})
        if head == "Err" and not value.option:
            return {False}, ({} if bound == "_" else {bound: value.error})
        return self._unsupported(inner, "match pattern")

    def _try(self, node: tree_sitter.Node, value: Any) -> Any:
        if not isinstance(value, Fallible):
            return self._unsupported(node, "`?` on a value that is not a Result or an Option")
        if self.domain.decide(value.ok):
            return value.value
        self.lines.append(node.end_point[0] + 1)
        raise Return(Fallible(False, None, value.error, value.option))

    def _binary(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        op_node = node.child_by_field_name("operator")
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        assert op_node is not None and left is not None and right is not None
        return self._operate(node, self._text(op_node), self._eval(left, env), self._eval(right, env))

    def _operate(self, node: tree_sitter.Node, op: str, a: Any, b: Any) -> Any:
        """A binary operator on two evaluated operands."""
        if op in BINARY:
            return self.domain.arith(op, a, b)
        if op in COMPARE:
            return self.domain.compare(op, a, b)
        if op in ("&&", "||"):
            return self.domain.logic(op, a, b)
        return self._unsupported(node, f"operator `{op}`")

    def _assign(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        assert left is not None and right is not None
        value = self._eval(right, env)
        if left.type == "field_expression":
            target = left.child_by_field_name("value")
            name = left.child_by_field_name("field")
            assert target is not None and name is not None
            if target.type == "self" and self._text(name) in self.fields:
                self.fields[self._text(name)] = self._checked_field(left, self._text(name), value)
                return UNIT
        if left.type == "identifier" and self._text(left) in env:
            env[self._text(left)] = value
            return UNIT
        return self._unsupported(left, "assignment target")

    def _checked_field(self, node: tree_sitter.Node, name: str, value: Any) -> Any:
        expected = {"layout": Layout, "ptr": Ptr}.get(name)
        if expected is not None and not isinstance(value, expected):
            return self._unsupported(node, f"value assigned to self.{name}")
        return value

    # --- calls -------------------------------------------------------------

    def _call(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        assert function is not None and arguments is not None
        if function.type == "generic_function":
            function = function.child_by_field_name("function")
            assert function is not None
        arg_nodes = [a for a in arguments.named_children if a.type not in ("line_comment", "block_comment")]
        if function.type == "field_expression":
            receiver = function.child_by_field_name("value")
            method = function.child_by_field_name("field")
            assert receiver is not None and method is not None
            return self._method(node, self._eval(receiver, env), self._text(method), arg_nodes, env)
        path = _strip_generics(self._text(function))
        return self._function(node, path, [self._eval(a, env) for a in arg_nodes])

    def _method(
        self, node: tree_sitter.Node, receiver: Any, name: str, arg_nodes: list[tree_sitter.Node], env: dict[str, Any]
    ) -> Any:
        d = self.domain
        if name == "ok_or" and isinstance(receiver, Fallible) and receiver.option and len(arg_nodes) == 1:
            return Fallible(receiver.ok, receiver.value, self._eval(arg_nodes[0], env))
        if name == "map_err" and isinstance(receiver, Fallible) and len(arg_nodes) == 1:
            return Fallible(receiver.ok, receiver.value, self._error_closure(arg_nodes[0], env), receiver.option)
        args = [self._eval(a, env) for a in arg_nodes]
        if isinstance(receiver, SelfRef) and not args:
            layout = self.fields["layout"]
            if name == "len":
                return self.fields["len"]
            if name == "capacity":
                return d.capacity(layout.len)
            if name == "is_empty":
                return d.compare("==", self.fields["len"], d.const(0))
            if name in ("as_ptr", "as_mut_ptr"):
                return self.fields["ptr"]
        if isinstance(receiver, Layout) and not args:
            if name == "len":
                return receiver.len
            if name == "size":
                return d.layout_bytes(receiver.len)
            if name == "is_empty":
                return d.compare("==", receiver.len, d.const(0))
            if name == "into":
                return receiver
        if isinstance(receiver, Ptr) and not args and name in ("cast", "as_ptr", "cast_mut", "cast_const"):
            return receiver
        if not isinstance(receiver, (Unit, Token, Layout, Ptr, Fallible, SelfRef)):
            if name == "div_ceil" and len(args) == 1:
                return d.div_ceil(receiver, args[0])
            if name in ("checked_add", "checked_sub", "checked_mul", "checked_div") and len(args) == 1:
                op = {"checked_add": "+", "checked_sub": "-", "checked_mul": "*", "checked_div": "/"}[name]
                fits, value = d.checked(op, receiver, args[0])
                return Fallible(fits, value, None, option=True)
        return self._unsupported(node, "method call")

    def _error_closure(self, node: tree_sitter.Node, env: dict[str, Any]) -> Any:
        """`map_err(|_| E)`: a closure that ignores its argument and names an error; no other closure."""
        params = node.child_by_field_name("parameters")
        body = node.child_by_field_name("body")
        if node.type != "closure_expression" or params is None or body is None or self._text(params) != "|_|":
            return self._unsupported(node, "closure")
        return self._eval(body, env)

    def _function(self, node: tree_sitter.Node, path: str, args: list[Any]) -> Any:
        d = self.domain
        if path in MAX | MIN and len(args) == 2:
            a, b = args
            # When a == b it does not matter which one Rust returns: the values are equal.
            return d.select(d.compare(">=", a, b), a, b) if path in MAX else d.select(d.compare("<=", a, b), a, b)
        if path in SIZE_OF and not args:
            return d.elem_size()
        if path == "Self::is_zst" and not args:
            return d.compare("==", d.elem_size(), d.const(0))
        if path in ("Ok", "Some", "Err") and len(args) == 1:
            ok = path != "Err"
            return Fallible(ok, args[0] if ok else None, None if ok else args[0], option=path == "Some")
        if path == "bindings::is_vmalloc_addr" and len(args) == 1 and isinstance(args[0], Ptr):
            return d.is_vmalloc(args[0].alloc)
        if path == "NonNull::dangling" and not args:
            return Ptr(d.dangling())
        if path == "ArrayLayout::new" and len(args) == 1:
            return Fallible(d.layout_fits(args[0]), Layout(args[0]), Token("LayoutError"))
        if path == "ArrayLayout::new_unchecked" and len(args) == 1:
            return Layout(args[0])
        if path == "ArrayLayout::empty" and not args:
            return Layout(d.const(0))
        if path in COPY and len(args) == 3 and isinstance(args[0], Ptr) and isinstance(args[1], Ptr):
            self._effects(node, {"copy"})
            d.copy(args[0].alloc, args[1].alloc, d.arith("*", args[2], d.elem_size()))
            return UNIT
        # `A::` is the Vec's allocator: the models check KVVec, so it is KVmalloc.
        if path.startswith(("KVmalloc::", "A::")):
            return self._kvmalloc(node, path.split("::", 1)[1], args)
        return self._unsupported(node, "call")

    def _effects(self, node: tree_sitter.Node, kinds: set[str]) -> None:
        """Refuse a path whose calls may allocate, copy or free twice: a model step records one of each.

        Such a path (a double free, say) would otherwise lose an effect from the
        record, and a difference could go unseen; it is UNKNOWN instead.
        """
        twice = kinds & self.possible_effects
        if twice:
            self._unsupported(node, f"second possible {'/'.join(sorted(twice))} on one path (a step records one)")
        self.possible_effects |= kinds

    def _kvmalloc(self, node: tree_sitter.Node, name: str, args: list[Any]) -> Any:
        """`KVmalloc::realloc(ptr, layout, old, flags, nid)`, `alloc(layout, flags, nid)`, `free(ptr, layout)`."""
        d = self.domain
        if name == "realloc" and len(args) == 5 and isinstance(args[0], Fallible):
            layout, old = args[1], args[2]
            if isinstance(layout, Layout) and isinstance(old, Layout) and args[0].option:
                # `Some(ptr)` is the only pointer the subset passes; `None` is no allocation.
                some = args[0].ok is True and isinstance(args[0].value, Ptr)
                current = args[0].value.alloc if some else d.dangling()
                old_bytes = d.layout_bytes(old.len)
                self._effects(node, {"allocation", "copy", "free"})
                ok, alloc = d.allocator(Fn.REALLOC, current, d.layout_bytes(layout.len), old_bytes)
                return Fallible(ok, Ptr(alloc), Token("AllocError"))
        if name == "alloc" and len(args) == 3 and isinstance(args[0], Layout):
            self._effects(node, {"allocation"})
            ok, alloc = d.allocator(Fn.ALLOC, d.dangling(), d.layout_bytes(args[0].len), d.const(0))
            return Fallible(ok, Ptr(alloc), Token("AllocError"))
        if name == "free" and len(args) == 2 and isinstance(args[0], Ptr) and isinstance(args[1], Layout):
            self._effects(node, {"free"})
            d.allocator(Fn.FREE, args[0].alloc, d.const(0), d.layout_bytes(args[1].len))
            return UNIT
        return self._unsupported(node, "KVmalloc call")


_KIND_NAMES = {
    "loop_expression": "loop",
    "while_expression": "while loop",
    "for_expression": "for loop",
    "closure_expression": "closure",
    "macro_invocation": "macro",
    "compound_assignment_expr": "compound assignment",
    "type_cast_expression": "cast",
    "reference_expression": "reference",
    "index_expression": "indexing",
    "struct_expression": "struct expression",
    "tuple_expression": "tuple",
    "array_expression": "array",
    "break_expression": "break",
    "continue_expression": "continue",
    "await_expression": "await",
    "range_expression": "range",
}


def _is_self(param: tree_sitter.Node) -> bool:
    """`self: &Arc<Self>`: a typed self parameter."""
    pattern = param.child_by_field_name("pattern")
    return param.type == "parameter" and pattern is not None and pattern.type == "self"


def _integer(text: str) -> int:
    digits = text.replace("_", "")
    for suffix in ("usize", "u64", "u32", "isize", "i64", "i32"):
        digits = digits.removesuffix(suffix)
    return int(digits, 0)


def _strip_generics(path: str) -> str:
    """`ArrayLayout::<T>::new` is `ArrayLayout::new`; `size_of::<T>` is `size_of`."""
    out, depth = [], 0
    for ch in "".join(path.split()):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out).replace("::::", "::").removesuffix("::")


def _excerpt(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 60 else first[:57] + "..."
