"""The policy metrics for all 64-bit sizes with the run's pages, where BMC and k-induction decide them.

The explored instance (verify.check.policy_metrics) gives each metric exactly, for
its small pages and capacities only. Here a metric's value is a statement about
every sequence of operations from `KVVec::new()` with the platform's pages: a bound
is PROVED when BMC up to the run's depth finds no violation and k-induction then
proves it for every sequence (properties.binder.bmc_then_induction); it is exact
when the next value is violated by a trace from `KVVec::new()` that replays on the
Python model. Neither: the bound is said with what was not decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.binder import Policy
from models.catalogue import ModelSpec
from models.machine import Platform
from properties.base import Verdict
from properties.binder import (
    Finding,
    JudgedPredicate,
    bmc_from_new,
    bmc_then_induction,
    replay,
    room_under,
    shrinks_to_room,
    waste_over,
    wasteful,
)
from verify.check.engine import ReplayError
from verify.check.runner import RunOptions
from verify.search.solver import fresh_context

# The largest room after a shrink searched for: each step up is one more BMC and k-induction.
MAX_ROOM = 1 << 16


@dataclass(frozen=True)
class WasteForAllSizes:
    """The waste factor with the run's pages for every sequence of operations, where it can be proved.

    `bound`: the least c for which "capacity < c * (len + 1) after every deregistration" is k-inductive
    (BMC from `KVVec::new()`, then k-induction: for all 64-bit sizes), searching down from the instance's
    value; None when even that is not proved for every sequence. `refuted`: c - 1 violated by a trace
    from new() that replays on the Python model (then `bound` is exact), else None (c - 1 neither proved
    for every sequence nor refuted within the BMC depth).
    """

    page_size: int
    bound: int | None
    refuted: int | None
    detail: str

    def text(self) -> str:
        if self.bound is None:
            return "not proved"
        return str(self.bound) if self.refuted is not None else f"<= {self.bound}"


@dataclass(frozen=True)
class RegrowForAllSizes:
    """The regrow window with the run's pages for every sequence of operations.

    `least`: a window w proved to bound every window from below (every shrink leaves at least w - 1 free
    slots, by BMC then k-induction; w = 1 needs no proof). `exact`: a trace from `KVVec::new()` in which a
    shrink leaves exactly w - 1, replayed on the Python model, so the least window is w. None: the instance has no
    window (no shrink is followed by a reallocating registration there), and none is searched.
    """

    page_size: int
    least: int | None
    exact: bool
    detail: str

    def text(self) -> str:
        if self.least is None:
            return "none on the instance"
        return str(self.least) if self.exact else f">= {self.least}"


def _every_sequence(found: Finding) -> bool:
    return found.verdict is Verdict.PROVED and "induction" in found.scope and not found.undecided


def _shortest(policy: Policy, plat: Platform, options: RunOptions, bad: JudgedPredicate, found: Finding) -> Finding:
    """A violation with its shortest trace from `KVVec::new()`, whose length is the same in any process.

    `found`'s trace is the first model Z3 gives for a query of the whole depth,
    cut where the violation first shows: any model will do for Z3, and which
    one comes first depends on the solver's state and version, not on the
    policy (a run once gave naive's regrow witness 8 operations where a fresh
    process gives 7). BMC one depth after another (properties.binder.bmc_from_new)
    stops at the least depth with a violation: a number the policy and the
    platform determine, whatever the solver ran before. `found` itself when
    that search does not decide.
    """
    if found.verdict is not Verdict.VIOLATED:
        return found
    shortest = bmc_from_new(policy, plat, options.solving, options.bmc_depth, bad)
    return shortest if shortest.verdict is Verdict.VIOLATED else found


def waste_cell(model: ModelSpec, instance_waste: int, options: RunOptions) -> WasteForAllSizes:
    """WasteForAllSizes of one policy: one BMC and k-induction query pair per factor tried."""
    fresh_context()
    policy = model.binder_policy()
    plat = model.machine(model.size_min, options.page_size)
    depth, solving = options.bmc_depth, options.solving

    def tried(c: int) -> Finding:
        return _shortest(policy, plat, options, waste_over(c), bmc_then_induction(policy, plat, solving, depth,
                                                                                   waste_over(c)))

    first = tried(instance_waste)
    if not _every_sequence(first):
        word = first.verdict.value if first.verdict is not Verdict.PROVED else f"only {first.scope}"
        return WasteForAllSizes(plat.page_size, None, None, f"c = {instance_waste}: {word} {first.detail}".strip())
    c = instance_waste
    while c > 1:
        below = tried(c - 1)
        if _every_sequence(below):
            c -= 1
            continue
        if below.verdict is Verdict.VIOLATED:
            steps = replay(plat, policy, below.actions)
            if not wasteful(plat, steps, c - 1):
                raise ReplayError(f"waste {c - 1} on {model.name}: the trace does not leave that much in Python")
            return WasteForAllSizes(plat.page_size, c, c - 1, f"c = {c - 1}: violated in {len(steps)} operations")
        return WasteForAllSizes(plat.page_size, c, None, f"c = {c - 1}: {below.verdict.value}, {below.scope}")
    return WasteForAllSizes(plat.page_size, c, None, "c = 1 holds")


def regrow_cell(model: ModelSpec, instance_window: int | None, options: RunOptions) -> RegrowForAllSizes:
    """RegrowForAllSizes of one policy, through the room a shrink leaves.

    A registration reallocates exactly when the list is full (a failed one changes nothing), so the
    registrations after a shrink to len of capacity cap are free until the (cap - len + 1)-th: the regrow
    window is the least room a shrink leaves, plus one (tests/test_policy_sweep.py holds the explorer's
    window to that on the whole family). "Every shrink leaves at least r free slots" has no look-back, so
    k-induction proves it for every sequence; it is searched down from the instance's room until proved,
    then up (one at a time to 4, then doubling, to MAX_ROOM) while proved, and the next room is exact when
    a trace from new() replays with a shrink leaving less.
    """
    fresh_context()
    policy = model.binder_policy()
    plat = model.machine(model.size_min, options.page_size)
    if instance_window is None:
        return RegrowForAllSizes(plat.page_size, None, False, "not searched")
    depth, solving = options.bmc_depth, options.solving
    found: dict[int, Finding] = {}

    def under(r: int) -> Finding:
        """A shrink leaving fewer than r free slots: PROVED for every sequence, every shrink leaves r or more."""
        if r not in found:
            found[r] = _shortest(policy, plat, options, room_under(r),
                                 bmc_then_induction(policy, plat, solving, depth, room_under(r)))
        return found[r]

    room = next((r for r in range(instance_window - 1, 0, -1) if _every_sequence(under(r))), 0)
    while room < MAX_ROOM:
        higher = room + 1 if room < 4 else room * 2
        if not _every_sequence(under(higher)):
            break
        room = higher
    proof = "" if room == 0 else f"every shrink leaves >= {room} free slots by {under(room).scope}; "
    if room >= MAX_ROOM:
        return RegrowForAllSizes(plat.page_size, room + 1, False, f"{proof}not searched beyond")
    at = under(room + 1)
    if at.verdict is Verdict.VIOLATED:
        steps = replay(plat, policy, at.actions)
        if not shrinks_to_room(plat, steps, room + 1):
            raise ReplayError(f"room {room} on {model.name}: the trace's last shrink leaves more in Python")
        return RegrowForAllSizes(plat.page_size, room + 1, True,
                                 f"{proof}a shrink leaves {room} free slots in {len(steps)} operations")
    said = f"{at.verdict.value}, {at.scope}" + (f" ({at.detail})" if at.detail else "")
    return RegrowForAllSizes(plat.page_size, room + 1, False, f"{proof}fewer than {room + 1}: {said}")
