"""Parse Rust with tree-sitter and find the functions under check by query, not by walking the tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_rust

from models.allocator import Outcome
from models.vec import Reserve, ShrinkTo
from models.vec_z3 import SymAction, SymOutcome, SymReserve, SymShrinkTo
from verify.files import MAX_SOURCE_BYTES, UnreadableFile, read_regular

LANGUAGE = tree_sitter.Language(tree_sitter_rust.language())

# Every method of every inherent `impl`: the impl's self type and the function.
_METHODS = tree_sitter.Query(
    LANGUAGE,
    """
    (impl_item
      !trait
      type: (_) @self_type
      body: (declaration_list (function_item name: (identifier) @name) @function))
    """,
)


class SourceError(Exception):
    """Source the front end cannot read or does not support, at a place in a file."""

    def __init__(self, path: str, node: tree_sitter.Node | None, message: str) -> None:
        if node is None:
            where = path
        else:
            row, col = node.start_point
            where = f"{path}:{row + 1}:{col + 1}"
        super().__init__(f"{where}: {message}")
        self.where = where


class Unsupported(SourceError):
    """A construct outside the subset the interpreter knows: the verdict is UNKNOWN, never a skip."""


@dataclass(frozen=True)
class Function:
    """A function found in a file: its syntax node and where it came from."""

    path: str
    node: tree_sitter.Node
    source: bytes

    def text(self, node: tree_sitter.Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode()

    @property
    def line(self) -> int:
        return self.node.start_point[0] + 1


def parse(path: Path) -> tuple[tree_sitter.Tree, bytes]:
    """The syntax tree of a Rust file; a file with syntax errors is refused at its first error."""
    try:
        source = read_regular(path, MAX_SOURCE_BYTES, "a Rust source file")
        source.decode("utf-8")  # the walk reads identifiers and literals as text
    except UnreadableFile as e:
        raise SourceError(str(path), None, str(e)) from None
    except UnicodeDecodeError as e:
        raise SourceError(str(path), None, f"not UTF-8 text (byte {e.start})") from None
    tree = tree_sitter.Parser(LANGUAGE).parse(source)
    if tree.root_node.has_error:
        raise SourceError(str(path), _first_error(tree.root_node), "syntax error") from None
    return tree, source


def _first_error(node: tree_sitter.Node) -> tree_sitter.Node:
    for child in node.children:
        if child.is_error or child.is_missing:
            return child
        if child.has_error:
            return _first_error(child)
    return node


def _normalised(text: str) -> str:
    return "".join(text.split())


def find_method(path: Path, self_type: str, name: str) -> Function:
    """The method `name` of the inherent impl whose self type is `self_type` (spaces ignored).

    Exactly one must exist: none, or two (say under different cfgs), is an error
    rather than a guess.
    """
    tree, source = parse(path)
    found = []
    for _, captures in tree_sitter.QueryCursor(_METHODS).matches(tree.root_node):
        (type_node,) = captures["self_type"]
        (name_node,) = captures["name"]
        (function,) = captures["function"]
        if _normalised(source[type_node.start_byte : type_node.end_byte].decode()) != _normalised(self_type):
            continue
        if source[name_node.start_byte : name_node.end_byte].decode() == name:
            found.append(function)
    if not found:
        raise SourceError(str(path), None, f"no `fn {name}` in an `impl {self_type}` block")
    if len(found) > 1:
        raise SourceError(str(path), found[1], f"a second `fn {name}` in an `impl {self_type}` block")
    return Function(str(path), found[0], source)


# --- the functions of kvec.rs under check ------------------------------------------

KVEC = Path("rust/kernel/alloc/kvec.rs")


@dataclass(frozen=True)
class Operation:
    """A function of kvec.rs under check: where it is, and its action in the two encodings of the model."""

    name: str
    impl: str  # the impl block's self type
    argument: str  # the parameter after self, named as in the model's action

    def sym_action(self, argument: Any, outcome: SymOutcome) -> SymAction:
        return SymShrinkTo(argument, outcome) if self.name == "shrink_to" else SymReserve(argument, outcome)

    def action(self, argument: int, outcome: Outcome) -> ShrinkTo | Reserve:
        return ShrinkTo(argument, outcome) if self.name == "shrink_to" else Reserve(argument, outcome)


SHRINK_TO = Operation("shrink_to", "Vec<T, KVmalloc>", "min_capacity")
RESERVE = Operation("reserve", "Vec<T, A>", "additional")  # the generic impl: the growth rule of every Vec
OPERATIONS = (SHRINK_TO, RESERVE)
