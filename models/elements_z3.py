"""The identities of a vector's elements in Z3: a function from index to identity, without `lambda`.

The counterpart of elements.py. The element arrays are only ever read, one
index at a time (`elems[j]`), so a sequence is kept as the recipe that built
it (a store, a choice between two sequences, a copy into a new buffer, a
removal that shifts the rest down) and a read follows the recipe down to a
plain array or a closed form, as an If-chain. The queries are then in the
logic of bit-vectors and arrays alone: Bitwuzla's SMT-LIB2 parser, which does
not read `lambda` terms, reads every one of them, and no solver has to
beta-reduce anything. Reads are memoised per node and index, so a term read
twice is built once and the queries share it.
"""

from __future__ import annotations

from typing import Any

import z3

from models.elements import GARBAGE, Elements
from models.machine import BITS


def _value(term: Any) -> int | None:
    return term.as_long() if z3.is_bv_value(term) else None


def _same(a: Any, b: Any) -> bool:
    return bool(a is b or a.eq(b))


def _if(cond: Any, then: Any, other: Any) -> Any:
    """If-then-else that folds a literal condition and equal branches (the lambda's reads did the same)."""
    if _same(then, other) or z3.is_true(cond):
        return then
    if z3.is_false(cond):
        return other
    return z3.If(cond, then, other)


def _ult(a: Any, b: Any) -> Any:
    x, y = _value(a), _value(b)
    return z3.BoolVal(x < y) if x is not None and y is not None else z3.ULT(a, b)


def _plus(index: Any, step: Any) -> Any:
    """index + step, with a constant step folded into a constant or an offset (j + 1 + 1 is j + 2).

    After several removals a read asks for j, j + 1, j + 2, ...: folding the
    offsets makes equal indices one term, so their reads are shared.
    """
    s = _value(step)
    if s is not None:
        if (i := _value(index)) is not None:
            return z3.BitVecVal((i + s) % 2**BITS, BITS)
        if z3.is_app_of(index, z3.Z3_OP_BADD) and index.num_args() == 2 and (o := _value(index.arg(1))) is not None:
            return index.arg(0) + z3.BitVecVal((o + s) % 2**BITS, BITS)
    return index + step


class SymElems:
    """A sequence of identities, read at an index with `elems[j]`."""

    def __init__(self) -> None:
        self._reads: dict[int, Any] = {}

    def __getitem__(self, index: Any) -> Any:
        index = z3.BitVecVal(index, BITS) if isinstance(index, int) else index
        key = index.get_id()
        if key not in self._reads:
            self._reads[key] = self._read(index)
        return self._reads[key]

    def _read(self, index: Any) -> Any:
        raise NotImplementedError

    def store(self, index: Any, identity: Any) -> SymElems:
        """This sequence with `identity` at `index` (push)."""
        return _Stored(self, index, identity)

    def chosen(self, cond: Any, other: SymElems) -> SymElems:
        """This sequence where `cond` holds, else `other`."""
        if self is other or z3.is_true(cond):
            return self
        return other if z3.is_false(cond) else _Chosen(cond, self, other)

    def copied(self, count: Any, garbage: SymElems) -> SymElems:
        """The first `count` identities of this sequence, then `garbage` (a copy into a new buffer)."""
        return _Copied(self, count, garbage)

    def removed(self, at: Any, gone: Any) -> SymElems:
        """This sequence without the `gone` identities from `at` on; the rest shifted down (retain)."""
        return _Removed(self, at, gone)


class ArrayElems(SymElems):
    """Any identities at all: a plain array of the solver (a fresh state, memory nobody wrote)."""

    def __init__(self, array: Any) -> None:
        super().__init__()
        self.array = array

    @staticmethod
    def fresh(name: str) -> ArrayElems:
        return ArrayElems(z3.Array(name, z3.BitVecSort(BITS), z3.BitVecSort(BITS)))

    def _read(self, index: Any) -> Any:
        return z3.Select(self.array, index)


class IndexElems(SymElems):
    """The identities 0, 1, 2, ...: element j is j (a canonical list, processes numbered in order)."""

    def _read(self, index: Any) -> Any:
        return index


class RunElems(SymElems):
    """Concrete identities (elements.Elements) below their count; slots beyond them and GARBAGE slots free."""

    def __init__(self, elems: Elements, garbage: SymElems) -> None:
        super().__init__()
        self.elems = elems
        self.garbage = garbage

    def _read(self, index: Any) -> Any:
        value: Any = self.garbage[index]
        offset = self.elems.count
        for first, count in reversed(self.elems.runs):
            offset -= count
            if first != GARBAGE:
                inside = z3.And(z3.UGE(index, offset), z3.ULT(index, offset + count))
                value = z3.If(inside, z3.BitVecVal((first - offset) % 2**BITS, BITS) + index, value)
        return value


class _Stored(SymElems):
    def __init__(self, base: SymElems, at: Any, identity: Any) -> None:
        super().__init__()
        self.base, self.at, self.identity = base, at, identity

    def _read(self, index: Any) -> Any:
        at, i = _value(self.at), _value(index)
        if at is not None and i is not None:
            return self.identity if at == i else self.base[index]
        return _if(self.at == index, self.identity, self.base[index])


class _Chosen(SymElems):
    def __init__(self, cond: Any, then: SymElems, other: SymElems) -> None:
        super().__init__()
        self.cond, self.then, self.other = cond, then, other

    def _read(self, index: Any) -> Any:
        return _if(self.cond, self.then[index], self.other[index])


class _Copied(SymElems):
    def __init__(self, source: SymElems, count: Any, garbage: SymElems) -> None:
        super().__init__()
        self.source, self.count, self.garbage = source, count, garbage

    def _read(self, index: Any) -> Any:
        return _if(_ult(index, self.count), self.source[index], self.garbage[index])


class _Removed(SymElems):
    def __init__(self, base: SymElems, at: Any, gone: Any) -> None:
        super().__init__()
        self.base, self.at, self.gone = base, at, gone

    def _read(self, index: Any) -> Any:
        return _if(_ult(index, self.at), self.base[index], self.base[_plus(index, self.gone)])
