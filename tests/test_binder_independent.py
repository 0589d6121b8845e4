"""The binder findings and the policy table, derived again without the tool's models or explorer.

A small simulation written from the rules in SEMANTICS.md (reserve's growth, the
kmalloc size classes, krealloc keeping an object that fits, vrealloc growing in
place, kvmalloc's fallback, shrink_to's two paths and the policies), run by brute
force over every operation sequence and allocator outcome on the explorer's
instance (PAGE_SIZE 64, capacity <= 40). Its numbers are compared with the
README's tables and with hand-computed cases, not with the explorer's output.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PAGE, ELEM, MAX_CAP = 64, 8, 40
KMALLOC_MAX = PAGE << 10
OUTCOMES = ((True, True), (True, False), (False, True), (False, False))  # (kmalloc ok, vmalloc ok)
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def ksize(n: int) -> int:
    """A fresh kmalloc(n): a slab class up to two pages, else 2^order pages."""
    if n <= 2 * PAGE:
        return next(c for c in (8, 16, 32, 64, 96, 128) if c >= n)
    pages = -(-n // PAGE)
    return PAGE * (1 << (pages - 1).bit_length())


def vpages(n: int) -> int:
    return -(-n // PAGE)


@dataclass(frozen=True)
class S:
    """The list: len, capacity, the buffer's kind ('' none, 'k' kmalloc, 'v' vmalloc) and its physical bytes."""

    n: int = 0
    cap: int = 0
    kind: str = ""
    phys: int = 0


def kvmalloc(nbytes: int, k_ok: bool, v_ok: bool) -> tuple[str, int] | None:
    if k_ok and nbytes <= KMALLOC_MAX:
        return "k", ksize(nbytes)
    if nbytes > PAGE and v_ok:
        return "v", vpages(nbytes) * PAGE
    return None


def grow(s: S, k_ok: bool, v_ok: bool) -> S | None:
    """push on a full list: reserve(1) reallocates to max(2 * cap, len + 1); None if that fails."""
    cap = max(2 * s.cap, s.n + 1)
    nbytes = cap * ELEM
    if s.kind == "":
        got = kvmalloc(nbytes, k_ok, v_ok)
    elif nbytes <= s.phys:  # krealloc or vrealloc: the object (or the area's pages) already holds it
        got = s.kind, s.phys
    elif s.kind == "k":  # a new kmalloc object, else kvmalloc's vmalloc fallback
        got = ("k", ksize(nbytes)) if k_ok and nbytes <= KMALLOC_MAX else kvmalloc(nbytes, False, v_ok)
    else:
        got = ("v", vpages(nbytes) * PAGE) if v_ok else None
    return None if got is None else S(s.n + 1, cap, *got)


def shrink_to(s: S, min_capacity: int, k_ok: bool, v_ok: bool) -> tuple[bool, S]:
    """shrink_to (v6): (Ok?, the list after)."""
    target = max(s.n, min_capacity)
    if s.cap <= target:
        return True, s
    if target == 0 and s.kind == "k":
        return True, S(s.n)  # realloc to 0 frees
    if s.kind == "k":
        return True, S(s.n, target, "k", s.phys)  # krealloc keeps the object: it always fits
    if vpages(s.cap * ELEM) <= vpages(target * ELEM):
        return True, s  # no page freed
    if target == 0:
        return True, S(s.n)
    got = kvmalloc(target * ELEM, k_ok, v_ok)
    return (False, s) if got is None else (True, S(s.n, target, *got))


RULES: dict[str, tuple[Callable[[int, int], bool], Callable[[int, int], int]]] = {
    "v6": (lambda n, cap: n < cap // 4, lambda n, cap: n * 2),
    "v4": (lambda n, cap: n < cap // 4, lambda n, cap: cap // 2),
    "naive": (lambda n, cap: n < cap // 2, lambda n, cap: n),
    "never": (lambda n, cap: False, lambda n, cap: cap),
}


@dataclass(frozen=True)
class Op:
    """One operation from `pre`: what it was, and what the properties look at."""

    register: bool
    pre: S
    post: S
    shrink_asked: bool = False
    shrink_ok: bool = True

    @property
    def reallocates(self) -> bool:
        # Growth and a successful shrink always change the layout; nothing else changes the buffer.
        return self.post.cap != self.pre.cap

    @property
    def refused(self) -> bool:
        return self.shrink_asked and self.shrink_ok and self.post.cap == self.pre.cap


def ops(policy: str, s: S) -> Iterator[Op]:
    trigger, target = RULES[policy]
    for k_ok, v_ok in OUTCOMES:
        if s.n < s.cap:
            yield Op(True, s, S(s.n + 1, s.cap, s.kind, s.phys))
        else:
            grown = grow(s, k_ok, v_ok)
            if grown is None:
                yield Op(True, s, s)
            elif grown.cap <= MAX_CAP:  # the instance's bound
                yield Op(True, s, grown)
        if s.n:
            left = S(s.n - 1, s.cap, s.kind, s.phys)
            if trigger(left.n, left.cap):
                ok, after = shrink_to(left, target(left.n, left.cap), k_ok, v_ok)
                yield Op(False, s, after, True, ok)
            else:
                yield Op(False, s, left)


def reachable(policy: str) -> dict[S, list[Op]]:
    graph: dict[S, list[Op]] = {}
    todo = deque([S()])
    while todo:
        s = todo.popleft()
        if s in graph:
            continue
        graph[s] = list(ops(policy, s))
        todo.extend(o.post for o in graph[s])
    return graph


def worst_case(policy: str, k_max: int = 16) -> list[int]:
    """For k = 1..k_max, the most reallocating operations among k consecutive ones, from any reachable state."""
    graph = reachable(policy)
    best = dict.fromkeys(graph, 0)
    table = []
    for _ in range(k_max):
        best = {s: max((int(o.reallocates) + best[o.post] for o in graph[s]), default=0) for s in graph}
        table.append(max(best.values()))
    return table


def shortest(policy: str, bad: Callable[[list[Op]], bool], window: int = 1) -> list[Op] | None:
    """A shortest sequence from the empty list whose last `window` operations are `bad`, by breadth-first search."""
    seen: set[tuple[Op, ...] | S] = set()
    todo: deque[list[Op]] = deque([[]])
    while todo:
        path = todo.popleft()
        if len(path) >= window and bad(path[-window:]):
            return path
        here = path[-1].post if path else S()
        key = (here, *path[-(window - 1):]) if window > 1 and path else here
        if key in seen or len(path) > 30:
            continue
        seen.add(key)
        todo.extend([*path, o] for o in ops(policy, here))
    return None


def regrow(last: list[Op]) -> bool:
    d, r = last
    return not d.register and d.post.cap < d.pre.cap and r.register and r.reallocates


def waste(last: list[Op]) -> bool:
    d = last[0]
    skipped = d.shrink_asked and (not d.shrink_ok or d.refused)
    return not d.register and not skipped and d.post.cap >= 4 * (d.post.n + 1)


def reclaim(last: list[Op]) -> bool:
    d = last[0]
    return not d.register and d.shrink_ok and d.post.phys > ksize(4 * (d.post.n + 1) * ELEM)


def _readme_policy_rows() -> dict[str, list[str]]:
    start = README.index("#### The policies compared")
    rows = {}
    for line in README[start:].splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = re.match(r"(\w+)", cells[0])
        if name and name.group(1) in RULES:
            rows[name.group(1)] = cells
    return rows


POLICY_ROWS = _readme_policy_rows()


def test_the_readme_policy_table_has_a_row_per_policy() -> None:
    assert sorted(POLICY_ROWS) == sorted(RULES)


@pytest.mark.parametrize("policy", list(RULES))
def test_worst_case_reallocations_match_the_readme(policy: str) -> None:
    readme = [int(x) for x in POLICY_ROWS[policy][3].split()]
    assert worst_case(policy) == readme


def test_never_worst_case_by_hand() -> None:
    # never reallocates only when a push grows the list: at pushes 1, 2, 3, 5, 9, 17 (capacity 1 .. 32).
    grows = {1, 2, 3, 5, 9, 17}
    by_hand = [max(len(grows & set(range(a, a + k))) for a in range(1, 34)) for k in range(1, 17)]
    assert by_hand == [1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5] == worst_case("never")


@pytest.mark.parametrize(("policy", "states"), [("v6", 749), ("v4", 166), ("naive", 1163), ("never", 120)])
def test_the_simulation_reaches_as_many_states_as_the_explorer_counts(policy: str, states: int) -> None:
    assert len(reachable(policy)) == states


def test_no_immediate_regrow_rows() -> None:
    # v6: only when the last process leaves a capacity of 4 (register 3, deregister 3, register).
    v6 = shortest("v6", regrow, window=2)
    assert v6 is not None and len(v6) == 7
    assert (v6[-2].pre.cap, v6[-2].post.cap, v6[-2].post.n) == (4, 0, 0)
    pairs = [(d, r) for s, out in reachable("v6").items() for d in out for r in ops("v6", d.post)]
    assert {d.post.n for d, r in pairs if regrow([d, r])} == {0}
    # naive: register 2, deregister 2, register (5 operations).
    naive = shortest("naive", regrow, window=2)
    assert naive is not None and [o.register for o in naive] == [True, True, False, False, True]
    # v4 halves the capacity, leaving room for the next registration: never.
    assert shortest("v4", regrow, window=2) is None
    assert "PROVED" in POLICY_ROWS["v4"][1] and "register 2, deregister 2, register (5 operations)" in POLICY_ROWS[
        "naive"
    ][1]


def test_waste_bound_rows_and_v4s_story() -> None:
    assert shortest("v6", waste) is None and shortest("naive", waste) is None
    assert shortest("never", waste) is not None
    # v4: earlier shrinks skipped (here, failed allocations of the vmalloc path), then one halving
    # of the capacity leaves 8 for one process: 8 >= 4 * (1 + 1).
    v4 = shortest("v4", waste)
    assert v4 is not None and len(v4) == 17  # register 9, deregister 8
    last = v4[-1]
    assert (last.post.cap, last.post.n) == (8, 1) and last.pre.cap == 16
    assert any(o.shrink_asked and not o.shrink_ok for o in v4[:-1])
    assert "one halving leaves capacity 8 for 1 process" in POLICY_ROWS["v4"][2]


def test_v4_waste_by_hand() -> None:
    # 9 registrations (capacity 16, 128 bytes: above a page, so vmalloc when kmalloc fails at the growth),
    # then deregistrations whose shrinks fail (no allocation succeeds) down to 2 processes: capacity 16.
    # The next deregistration leaves 1 < 16/4 and halves to 8 >= 4 * (1 + 1).
    s = S()
    for i in range(9):
        vmalloc = i == 8  # the growth to 16 falls back to vmalloc
        s = next(o.post for o in ops("v4", s) if o.register and o.post.n == i + 1 and (o.post.kind == "v") == vmalloc)
    assert (s.n, s.cap, s.kind) == (9, 16, "v")
    trigger, target = RULES["v4"]
    while s.n > 2:
        left = S(s.n - 1, s.cap, s.kind, s.phys)
        if trigger(left.n, left.cap):
            ok, s = shrink_to(left, target(left.n, left.cap), False, False)
            assert not ok and s.cap == 16  # 2 vmalloc pages to 1: kvmalloc of 64 bytes fails
        else:
            s = left
    ok, last = shrink_to(S(1, 16, "v", s.phys), 8, True, True)
    assert ok and (last.cap, last.n) == (8, 1) and 8 >= 4 * (1 + 1)


@pytest.mark.parametrize("policy", list(RULES))
def test_reclaim_is_violated_on_every_policy(policy: str) -> None:
    assert shortest(policy, reclaim) is not None
    assert "VIOLATED" in POLICY_ROWS[policy][4]


def test_reclaim_finding_numbers_for_v6() -> None:
    # README: register 5 (capacity 8, a 64-byte kmalloc object), deregister all 5: v6 shrinks 8 -> 2 at one
    # process, and with none left the 64-byte object is still held where the bound takes 32 bytes.
    s, trace = S(), []
    for _ in range(5):
        op = next(o for o in ops("v6", s) if o.register)
        trace.append(op)
        s = op.post
    assert (s.cap, s.kind, s.phys) == (8, "k", 64)
    for _ in range(5):
        op = next(o for o in ops("v6", s) if not o.register)
        trace.append(op)
        s = op.post
    shrinks = [(o.pre.cap, o.post.cap, o.post.n) for o in trace if o.reallocates and not o.register]
    assert shrinks == [(8, 2, 1)]
    assert (s.n, s.phys, ksize(4 * (0 + 1) * ELEM)) == (0, 64, 32) and reclaim([trace[-1]])
    assert not any(reclaim([o]) for o in trace[:-1])
    shortest_v6 = shortest("v6", reclaim)
    assert shortest_v6 is not None and len(shortest_v6) == 10
