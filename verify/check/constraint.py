"""The constraint of `verify policies --best`: metrics compared with numbers, properties as flags.

    waste <= 4 && no-regrow
    reallocs16 < 10 && (keeps-others || !reclaim)

A metric (verify.check.policy_metrics) is `waste`, `reallocsK` (K = 1..16),
`regrow-window` (a policy with no regrow has an unbounded window) or `reclaim-factor`,
compared with `< <= > >= == !=` to a number. A flag is a binder property's id
without `binder.` (`waste-bound`, `no-thrash`, `no-immediate-regrow.bmc`, ...), true
when the property is PROVED on the policy; `no-regrow` is both `no-immediate-regrow`
and `no-immediate-regrow.bmc`. `&&`, `||`, `!` and parentheses combine them.
Parsed with lark; an error names its column.

A constraint is evaluated in three values while some verdicts are not known
yet (`None`): Kleene's logic, so a policy is dropped only when no verdict could
make it true.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from properties.binder import WORST_CASE_K
from verify.check.sweep import PROPERTY_IDS, PolicyRow

_GRAMMAR = r"""
?start: disj
?disj: conj | disj "||" conj -> either
?conj: neg | conj "&&" neg -> both
?neg: "!" neg -> negate | atom
?atom: NAME CMP NUMBER -> compare
     | NAME -> flag
     | "(" disj ")"
CMP: "<=" | ">=" | "==" | "!=" | "<" | ">"
NAME: /[a-z][a-z0-9.-]*/
NUMBER: /[0-9]+/
%import common.WS
%ignore WS
"""

def _window(r: PolicyRow) -> float:
    return float("inf") if r.metrics.regrow_window is None else r.metrics.regrow_window


def _reallocs(k: int) -> Callable[[PolicyRow], float]:
    return lambda r: r.metrics.reallocs[k - 1]


METRICS: dict[str, Callable[[PolicyRow], float]] = {
    "waste": lambda r: r.metrics.waste,
    "regrow-window": _window,
    "reclaim-factor": lambda r: r.metrics.reclaim,
    **{f"reallocs{k}": _reallocs(k) for k in range(1, WORST_CASE_K + 1)},
}
FLAGS: dict[str, tuple[str, ...]] = {
    **{p.removeprefix("binder."): (p,) for p in PROPERTY_IDS},
    "no-regrow": ("binder.no-immediate-regrow", "binder.no-immediate-regrow.bmc"),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


class ConstraintError(ValueError):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


# A constraint: a function of a row to True, False or None (a verdict it needs is not known yet).
Test = Callable[[PolicyRow], bool | None]


@dataclass(frozen=True)
class Constraint:
    text: str
    test: Test
    flags: frozenset[str]  # the property ids it reads

    def __call__(self, row: PolicyRow) -> bool | None:
        return self.test(row)


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def __init__(self) -> None:
        super().__init__()
        self.flags: set[str] = set()

    def either(self, a: Test, b: Test) -> Test:
        def test(r: PolicyRow) -> bool | None:
            x, y = a(r), b(r)
            return True if x or y else (None if x is None or y is None else False)
        return test

    def both(self, a: Test, b: Test) -> Test:
        def test(r: PolicyRow) -> bool | None:
            x, y = a(r), b(r)
            return False if x is False or y is False else (None if x is None or y is None else True)
        return test

    def negate(self, a: Test) -> Test:
        return lambda r: None if a(r) is None else not a(r)

    def compare(self, name: Token, op: Token, number: Token) -> Test:
        if str(name) not in METRICS:
            raise ConstraintError(f"no metric {str(name)!r}; metrics: {_listed(METRICS)}", name.column or 0)
        metric, value, compare = METRICS[str(name)], int(str(number)), _COMPARE[str(op)]
        return lambda r: compare(metric(r), value)

    def flag(self, name: Token) -> Test:
        ids = FLAGS.get(str(name))
        if ids is None:
            hint = " (a metric is compared with a number)" if str(name) in METRICS else ""
            raise ConstraintError(f"no property {str(name)!r}{hint}; properties: {_listed(FLAGS)}", name.column or 0)
        self.flags.update(ids)

        def test(r: PolicyRow) -> bool | None:
            values = [r.flag(i) for i in ids]
            return False if False in values else (None if None in values else True)
        return test


def _listed(names: Any) -> str:
    return ", ".join(sorted(names))


@cache
def _parser() -> Lark:
    # Built on first use, not at import: every command imports this module for the policies command's
    # flags, and only --best parses a constraint.
    return Lark(_GRAMMAR, parser="lalr")


def parse(text: str) -> Constraint:
    """The constraint `text`, or a ConstraintError naming the column."""
    builder = _Build()
    try:
        test = builder.transform(_parser().parse(text))
    except VisitError as e:
        if isinstance(e.orig_exc, ConstraintError):
            raise e.orig_exc from None
        raise
    except UnexpectedEOF:
        raise ConstraintError("the constraint ends early", len(text) + 1) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise ConstraintError("the constraint ends early", len(text) + 1) from None
        raise ConstraintError(f"unexpected {str(e.token)!r}", max(e.column, 1)) from None
    except UnexpectedCharacters as e:
        raise ConstraintError(f"unexpected {text[e.pos_in_stream or 0]!r}", e.column) from None
    except UnexpectedInput as e:
        raise ConstraintError(str(e).splitlines()[0], max(e.column, 1)) from None
    return Constraint(text, test, frozenset(builder.flags))


def best(rows: list[PolicyRow], constraint: Constraint, minimise: str,
         decide: Callable[[list[PolicyRow]], list[PolicyRow]]) -> list[PolicyRow]:
    """The rows satisfying `constraint` with the least `minimise`, every one of them fully decided.

    Rows are taken in order of the metric, a value at a time: those that may satisfy the
    constraint are handed to `decide` (which runs every property on them) and judged again;
    the first value with a row that does satisfy it is the answer.
    """
    metric = METRICS[minimise]
    for value in sorted({metric(r) for r in rows}):
        maybe = [r for r in rows if metric(r) == value and constraint(r) is not False]
        if not maybe:
            continue
        found = [r for r in decide(maybe) if constraint(r) is True]
        if found:
            return found
    return []
