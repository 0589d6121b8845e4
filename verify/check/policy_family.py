"""The family of binder shrink policies `verify policies` sweeps: every trigger with every target.

A trigger is `len < cap/d` or `len <= cap/d`, optionally with a capacity floor
(`&& cap > m`: small lists are left alone); a target is an expression of the
policy language (models/policy_lang.py). Each (trigger, target) pair is one
policy, named from its parts (`lt4-lenx2` is `len < cap/4 => len*2`); a pair
whose rule is a built-in policy's (v6 is `lt4-lenx2`) takes the built-in's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.binder import POLICIES
from models.catalogue import ModelSpec, model_named, policy_model

DIVISORS = tuple(range(2, 17))
FLOORS: tuple[int, ...] = ()  # none by default; `--floors 16,64` adds `&& cap > m` variants of every trigger
# len*k (k = 1..3), len*k + c (k = 1, 2; c = 4), cap/2, max(len*2, 8): shrink to fit, to a multiple of the
# length, with a constant headroom, by halving, and with a floor under which the list is never shrunk.
TARGETS = ("len", "len*2", "len*3", "len + 4", "len*2 + 4", "cap/2", "max(len*2, 8)")

_SLUG = {"*": "x", "/": "d", "+": "p", "-": "m", ",": "-", "%": "r"}


@dataclass(frozen=True)
class Family:
    divisors: tuple[int, ...] = DIVISORS
    floors: tuple[int, ...] = FLOORS
    targets: tuple[str, ...] = TARGETS

    def triggers(self) -> list[tuple[str, str]]:
        """(name part, text) of every trigger, `<` then `<=`, each divisor, without and then with each floor."""
        found = []
        for floor in (None, *self.floors):
            for op, word in (("<", "lt"), ("<=", "le")):
                for d in self.divisors:
                    text = f"len {op} cap/{d}" + ("" if floor is None else f" && cap > {floor}")
                    found.append((f"{word}{d}" + ("" if floor is None else f"m{floor}"), text))
        return found

    def rules(self) -> list[tuple[str, str]]:
        """(name, rule) of every policy of the family, built-in names for built-in rules."""
        built_in = {p.rule: p.name for p in POLICIES}
        found = []
        for trigger_name, trigger in self.triggers():
            for target in self.targets:
                rule = f"{trigger} => {target}"
                found.append((built_in.get(rule, f"{trigger_name}-{slug(target)}"), rule))
        return found

    def models(self) -> list[ModelSpec]:
        return [model_named(f"binder/{name}") if name in _BUILT_IN else policy_model(name, rule)
                for name, rule in self.rules()]


_BUILT_IN = {p.name for p in POLICIES}


def slug(expression: str) -> str:
    """A target expression as part of a policy name: `max(len*2, 8)` is `maxlenx2-8`."""
    text = "".join(_SLUG.get(ch, ch) for ch in expression if not ch.isspace() and ch not in "()")
    return re.sub(r"[^a-z0-9-]", "", text.lower())


def parse_numbers(text: str, what: str) -> tuple[int, ...]:
    """`2-16` or `2,4,8` (or both, comma-separated) as integers; a ValueError naming `what` otherwise."""
    found: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{what} {text!r}: expected numbers or ranges such as 2-16, not {part!r}")
        found += range(int(low), int(high) + 1) if dash else [int(low)]
    return tuple(dict.fromkeys(found))
