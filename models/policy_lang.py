"""Binder shrink policies as data: `TRIGGER => TARGET` over `len` and `cap`.

After a deregistration, context.rs asks whether to shrink `all_procs` and to
what capacity; a policy answers with two expressions over the list's length
(`len`) and capacity (`cap`), e.g. v6's `len < cap/4 => len*2`. The language
is the arithmetic such a rule is written in, with Rust's meaning on `usize`:
integer constants, `+ - * / %` (integer division), comparisons, `&&`, `||`,
`!`, `min(a, b)`, `max(a, b)`, `true`, `false`, parentheses. `&&` and `||`
short-circuit, as in Rust, and the target is computed only when the trigger
holds.

One definition compiles to both encodings: Python integers for the reference
model and 64-bit Z3 terms for the proofs. A result that does not fit a `usize`
(`len*2` past 2^64, `len - cap` below zero) or a division by zero is an
arithmetic fault: Rust panics with overflow checks on and wraps without, so the
policy is wrong either way. Both encodings compute the wrapped value (and
SMT-LIB's value for a division by zero: all ones for `/`, the dividend for
`%`), so they agree step for step, and each says when a fault happened, for
the property that looks for one (binder.policy-arithmetic).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

WORD = 64
MASK = (1 << WORD) - 1

_GRAMMAR = r"""
policy: cond ARROW value

?cond: conj | cond OR conj -> logic
?conj: neg | conj AND neg -> logic
?neg: NOT neg -> negate | catom
?catom: value CMP value -> compare
      | TRUE -> const_bool
      | FALSE -> const_bool
      | "(" cond ")"

?value: sum
?sum: product | sum ADDOP product -> arith
?product: atom | product MULOP atom -> arith
?atom: NUMBER -> number
     | LEN -> variable
     | CAP -> variable
     | FUNC "(" value "," value ")" -> call
     | "(" value ")"

ARROW: "=>"
OR: "||"
AND: "&&"
NOT: "!"
CMP: "<=" | ">=" | "==" | "!=" | "<" | ">"
ADDOP: "+" | "-"
MULOP: "*" | "/" | "%"
TRUE: "true"
FALSE: "false"
LEN: "len"
CAP: "cap"
FUNC: "min" | "max"
NUMBER: /[0-9][0-9_]*/

%import common.WS
%ignore WS
"""


class PolicyError(ValueError):
    """A policy that does not parse, or whose constant does not fit a usize; `column` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


# --- The syntax tree -----------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: int


@dataclass(frozen=True)
class Variable:
    name: str  # "len" or "cap"


@dataclass(frozen=True)
class Arith:
    op: str  # + - * / % min max
    left: IntExpr
    right: IntExpr
    column: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: IntExpr
    right: IntExpr


@dataclass(frozen=True)
class Logic:
    op: str  # && ||
    left: BoolExpr
    right: BoolExpr


@dataclass(frozen=True)
class Negate:
    operand: BoolExpr


@dataclass(frozen=True)
class BoolConst:
    value: bool


IntExpr = Number | Variable | Arith
BoolExpr = Compare | Logic | Negate | BoolConst


@v_args(inline=True)
class _ToTree(Transformer[Token, Any]):
    def policy(self, cond: BoolExpr, _arrow: Token, value: IntExpr) -> tuple[BoolExpr, IntExpr]:
        return cond, value

    def logic(self, left: BoolExpr, op: Token, right: BoolExpr) -> Logic:
        return Logic(str(op), left, right)

    def negate(self, _op: Token, operand: BoolExpr) -> Negate:
        return Negate(operand)

    def compare(self, left: IntExpr, op: Token, right: IntExpr) -> Compare:
        return Compare(str(op), left, right)

    def const_bool(self, token: Token) -> BoolConst:
        return BoolConst(str(token) == "true")

    def arith(self, left: IntExpr, op: Token, right: IntExpr) -> Arith:
        return Arith(str(op), left, right, op.column or 0)

    def number(self, token: Token) -> Number:
        value = int(str(token).replace("_", ""))
        if value > MASK:
            raise PolicyError(f"the constant {token} does not fit a 64-bit usize", token.column or 0)
        return Number(value)

    def variable(self, token: Token) -> Variable:
        return Variable(str(token))

    def call(self, func: Token, left: IntExpr, right: IntExpr) -> Arith:
        return Arith(str(func), left, right, func.column or 0)


_PARSER = Lark(_GRAMMAR, start="policy", parser="lalr", propagate_positions=True)

# What a user reads in an error, for the terminals lark names.
_EXPECTED = {
    "NUMBER": "a number", "LEN": "len", "CAP": "cap", "FUNC": "min/max", "LPAR": "(", "RPAR": ")",
    "CMP": "a comparison", "ADDOP": "+/-", "MULOP": "*,/,%", "AND": "&&", "OR": "||", "NOT": "!",
    "TRUE": "true", "FALSE": "false", "COMMA": ",", "ARROW": "=>", "$END": "the end of the policy",
}


def _expected(names: set[str]) -> str:
    shown = sorted({_EXPECTED.get(n, n.lower()) for n in names})
    return ", ".join(shown)


def parse(text: str) -> tuple[BoolExpr, IntExpr]:
    """The trigger and target of `TRIGGER => TARGET`, or a PolicyError naming the column."""
    try:
        tree = _PARSER.parse(text)
        trigger, target = _ToTree().transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, PolicyError):
            raise e.orig_exc from None
        raise
    except UnexpectedEOF as e:
        raise PolicyError(f"the policy ends early; expected {_expected(set(e.expected))}", len(text) + 1) from None
    except UnexpectedToken as e:
        expected = _expected(e.accepts or e.expected)
        if e.token.type == "$END":
            raise PolicyError(f"the policy ends early; expected {expected}", len(text) + 1) from None
        raise PolicyError(f"unexpected {str(e.token)!r}; expected {expected}", max(e.column, 1)) from None
    except UnexpectedCharacters as e:
        where = e.pos_in_stream or 0
        raise PolicyError(f"unexpected {text[where]!r}; a policy reads TRIGGER => TARGET over len and cap",
                          e.column) from None
    except UnexpectedInput as e:  # any other parse failure lark reports
        raise PolicyError(str(e).splitlines()[0], max(e.column, 1)) from None
    return trigger, target


# --- Python: exact integers, wrapped to a usize, faults collected --------------


def _int_py(e: IntExpr, n: int, cap: int, faults: list[str]) -> int:
    if isinstance(e, Number):
        return e.value
    if isinstance(e, Variable):
        return n if e.name == "len" else cap
    a, b = _int_py(e.left, n, cap, faults), _int_py(e.right, n, cap, faults)
    if e.op in ("/", "%") and b == 0:
        faults.append(f"division by zero at column {e.column}")
        return MASK if e.op == "/" else a
    exact = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a // b, "%": lambda: a % b,
        "min": lambda: min(a, b), "max": lambda: max(a, b),
    }[e.op]()
    if not 0 <= exact <= MASK:
        faults.append(f"'{e.op}' at column {e.column} {'overflows' if exact > MASK else 'underflows'} a usize")
    return exact & MASK


_COMPARE_PY: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _bool_py(e: BoolExpr, n: int, cap: int, faults: list[str]) -> bool:
    if isinstance(e, BoolConst):
        return e.value
    if isinstance(e, Negate):
        return not _bool_py(e.operand, n, cap, faults)
    if isinstance(e, Compare):
        return _COMPARE_PY[e.op](_int_py(e.left, n, cap, faults), _int_py(e.right, n, cap, faults))
    left = _bool_py(e.left, n, cap, faults)
    if left == (e.op == "||"):  # short-circuit: the right operand is not evaluated
        return left
    return _bool_py(e.right, n, cap, faults)


# --- Z3: 64-bit terms, with the condition under which a fault happens ----------


def _int_z3(e: IntExpr, n: Any, cap: Any) -> tuple[Any, Any]:
    """The term and the condition that computing it faults."""
    if isinstance(e, Number):
        return z3.BitVecVal(e.value, WORD), z3.BoolVal(False)
    if isinstance(e, Variable):
        return (n if e.name == "len" else cap), z3.BoolVal(False)
    (a, fa), (b, fb) = _int_z3(e.left, n, cap), _int_z3(e.right, n, cap)
    value: Any
    own: Any = z3.BoolVal(False)
    if e.op == "+":
        value, own = a + b, z3.Not(z3.BVAddNoOverflow(a, b, False))
    elif e.op == "-":
        value, own = a - b, z3.ULT(a, b)
    elif e.op == "*":
        value, own = a * b, z3.Not(z3.BVMulNoOverflow(a, b, False))
    elif e.op == "/":
        value, own = z3.UDiv(a, b), b == 0
    elif e.op == "%":
        value, own = z3.URem(a, b), b == 0
    elif e.op == "min":
        value = z3.If(z3.ULE(a, b), a, b)
    else:
        value = z3.If(z3.UGE(a, b), a, b)
    return value, z3.Or(fa, fb, own)


_COMPARE_Z3: dict[str, Callable[[Any, Any], Any]] = {
    "<": z3.ULT, "<=": z3.ULE, ">": z3.UGT, ">=": z3.UGE, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _bool_z3(e: BoolExpr, n: Any, cap: Any) -> tuple[Any, Any]:
    if isinstance(e, BoolConst):
        return z3.BoolVal(e.value), z3.BoolVal(False)
    if isinstance(e, Negate):
        value, fault = _bool_z3(e.operand, n, cap)
        return z3.Not(value), fault
    if isinstance(e, Compare):
        (a, fa), (b, fb) = _int_z3(e.left, n, cap), _int_z3(e.right, n, cap)
        return _COMPARE_Z3[e.op](a, b), z3.Or(fa, fb)
    (a, fa), (b, fb) = _bool_z3(e.left, n, cap), _bool_z3(e.right, n, cap)
    if e.op == "&&":
        return z3.And(a, b), z3.Or(fa, z3.And(a, fb))
    return z3.Or(a, b), z3.Or(fa, z3.And(z3.Not(a), fb))


# --- numpy: the rule over whole arrays of (len, cap), for the packed explorer -------------
# Object arrays of Python ints, so the values are exact and wrap as a usize; a division by zero takes
# SMT-LIB's value, as above. Both operands of && and || are computed (no faults are reported here).
# numpy is imported in these functions, not at the top: only the packed explorer passes arrays, and a
# command that does not explore (a run answered from the proof cache) then does not load it.


def _is_array(value: Any) -> bool:
    numpy = sys.modules.get("numpy")  # an array exists only once numpy is loaded
    return numpy is not None and isinstance(value, numpy.ndarray)


def _int_np(e: IntExpr, n: Any, cap: Any) -> Any:
    import numpy as np

    if isinstance(e, Number):
        return e.value
    if isinstance(e, Variable):
        return n if e.name == "len" else cap
    a, b = _int_np(e.left, n, cap), _int_np(e.right, n, cap)
    if e.op in ("/", "%"):
        zero = np.equal(b, 0)
        safe = np.where(zero, 1, b)
        exact = np.where(zero, MASK if e.op == "/" else a, a // safe if e.op == "/" else a % safe)
    else:
        exact = {
            "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
            "min": lambda: np.minimum(a, b), "max": lambda: np.maximum(a, b),
        }[e.op]()
    return np.asarray(exact, dtype=object) % (MASK + 1)


def _bool_np(e: BoolExpr, n: Any, cap: Any) -> Any:
    import numpy as np

    if isinstance(e, BoolConst):
        return np.full(np.shape(n), e.value)
    if isinstance(e, Negate):
        return ~_bool_np(e.operand, n, cap)
    if isinstance(e, Compare):
        return np.asarray(_COMPARE_PY[e.op](_int_np(e.left, n, cap), _int_np(e.right, n, cap)), dtype=np.bool_)
    a, b = _bool_np(e.left, n, cap), _bool_np(e.right, n, cap)
    return a & b if e.op == "&&" else a | b


def _objects(values: Any) -> Any:
    import numpy as np

    return np.asarray(values).astype(object)


@dataclass(frozen=True)
class Compiled:
    """One policy definition in both encodings."""

    text: str
    trigger: Callable[[int, int], bool]
    target: Callable[[int, int], int]
    trigger_z3: Callable[[Any, Any], Any]
    target_z3: Callable[[Any, Any], Any]
    # The arithmetic faults of deciding (and, when it shrinks, of computing the target): a description
    # of the first, or None; and the same as a Z3 condition.
    fault: Callable[[int, int], str | None]
    fault_z3: Callable[[Any, Any], Any]


def split(text: str) -> tuple[str, str]:
    """The trigger's and the target's text of a policy that parses."""
    parse(text)
    trigger, _, target = text.partition("=>")  # the only `=>` of a policy that parses is its arrow
    return trigger.strip(), target.strip()


def compile_policy(text: str) -> Compiled:
    """Both encodings of `TRIGGER => TARGET`; a PolicyError if it does not parse."""
    trigger, target = parse(text)

    def fault(n: int, cap: int) -> str | None:
        faults: list[str] = []
        if _bool_py(trigger, n, cap, faults):
            _int_py(target, n, cap, faults)
        return faults[0] if faults else None

    def fault_z3(n: Any, cap: Any) -> Any:
        shrinks, trigger_fault = _bool_z3(trigger, n, cap)
        return z3.Or(trigger_fault, z3.And(shrinks, _int_z3(target, n, cap)[1]))

    return Compiled(
        text,
        # Python ints, or numpy arrays of them (the packed explorer's levels).
        lambda n, cap: _bool_np(trigger, _objects(n), _objects(cap)) if _is_array(n)
        else _bool_py(trigger, n, cap, []),
        lambda n, cap: _int_np(target, _objects(n), _objects(cap)) if _is_array(n)
        else _int_py(target, n, cap, []),
        lambda n, cap: _bool_z3(trigger, n, cap)[0],
        lambda n, cap: _int_z3(target, n, cap)[0],
        fault,
        fault_z3,
    )


# --- Rust: the rule as binder's code would read -----------------------------------


def _rust_int(e: IntExpr, n: str, cap: str, nested: bool) -> str:
    if isinstance(e, Number):
        return str(e.value)
    if isinstance(e, Variable):
        return n if e.name == "len" else cap
    a, b = _rust_int(e.left, n, cap, True), _rust_int(e.right, n, cap, True)
    if e.op in ("min", "max"):
        return f"core::cmp::{e.op}({_rust_int(e.left, n, cap, False)}, {_rust_int(e.right, n, cap, False)})"
    text = f"{a} {e.op} {b}"
    return f"({text})" if nested else text


def _rust_bool(e: BoolExpr, n: str, cap: str, nested: bool) -> str:
    if isinstance(e, BoolConst):
        return "true" if e.value else "false"
    if isinstance(e, Negate):
        return f"!{_rust_bool(e.operand, n, cap, True)}"
    if isinstance(e, Compare):
        text = f"{_rust_int(e.left, n, cap, False)} {e.op} {_rust_int(e.right, n, cap, False)}"
    else:
        text = f"{_rust_bool(e.left, n, cap, True)} {e.op} {_rust_bool(e.right, n, cap, True)}"
    return f"({text})" if nested else text


def to_rust(text: str, n: str, cap: str) -> tuple[str | None, str]:
    """The trigger (None: it never shrinks) and the target in Rust, `len` and `cap` read as `n` and `cap`.

    Every compound operand is in parentheses, so Rust's precedence reads it as the policy does; `usize`
    arithmetic panics where the policy's has an arithmetic fault (with the kernel's overflow checks).
    """
    trigger, target = parse(text)
    never = isinstance(trigger, BoolConst) and not trigger.value
    return (None if never else _rust_bool(trigger, n, cap, False)), _rust_int(target, n, cap, False)
