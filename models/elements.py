"""The identities of a vector's elements, kept as runs so any 64-bit length fits.

A vector of 2^40 elements cannot be a Python list, yet a counterexample may
need one. The sequence is a tuple of runs (first identity, count), each run
standing for the consecutive identities first, first+1, ... GARBAGE marks
slots whose contents were never copied: reading one is the loss of an element.
"""

from __future__ import annotations

from dataclasses import dataclass

GARBAGE = -1


@dataclass(frozen=True)
class Elements:
    runs: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def identities(count: int, first: int = 0) -> Elements:
        """The elements first, first+1, ..., first+count-1."""
        return Elements(((first, count),) if count else ())

    @staticmethod
    def garbage(count: int) -> Elements:
        return Elements(((GARBAGE, count),) if count else ())

    def __len__(self) -> int:
        return self.count

    @property
    def count(self) -> int:
        """The number of elements; unlike len(), any usize (len() stops at 2^63 - 1)."""
        return sum(count for _, count in self.runs)

    def concat(self, other: Elements) -> Elements:
        runs = list(self.runs)
        for first, count in other.runs:
            if runs:
                last_first, last_count = runs[-1]
                contiguous = last_first == GARBAGE == first or (
                    GARBAGE not in (first, last_first) and last_first + last_count == first
                )
                if contiguous:
                    runs[-1] = (last_first, last_count + count)
                    continue
            runs.append((first, count))
        return Elements(tuple(runs))

    def push(self, identity: int) -> Elements:
        return self.concat(Elements.identities(1, identity))

    def prefix(self, count: int) -> Elements:
        runs = []
        remaining = count
        for first, length in self.runs:
            if remaining <= 0:
                break
            take = min(length, remaining)
            runs.append((first, take))
            remaining -= take
        return Elements(tuple(runs))

    def without(self, identity: int) -> Elements:
        """Every element except those with this identity, in order (retain)."""
        result = Elements()
        for first, count in self.runs:
            if first != GARBAGE and first <= identity < first + count:
                result = result.concat(Elements.identities(identity - first, first))
                result = result.concat(Elements.identities(first + count - identity - 1, identity + 1))
            else:
                result = result.concat(Elements(((first, count),)))
        return result

    def contains(self, identity: int) -> bool:
        return any(first != GARBAGE and first <= identity < first + count for first, count in self.runs)

    def at(self, index: int) -> int:
        """The identity at `index` (GARBAGE for an uncopied slot)."""
        for first, count in self.runs:
            if index < count:
                return first if first == GARBAGE else first + index
            index -= count
        raise IndexError(index)

    def has_garbage(self) -> bool:
        return any(first == GARBAGE for first, _ in self.runs)

    def describe(self) -> str:
        parts = []
        for first, count in self.runs:
            if first == GARBAGE:
                parts.append(f"<{count} uncopied>")
            elif count == 1:
                parts.append(str(first))
            else:
                parts.append(f"{first}..{first + count - 1}")
        return "[" + ", ".join(parts) + "]"
