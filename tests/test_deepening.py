"""BMC by incremental unrolling: the same answers as whole queries, and the default depth's traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3

from models.binder import ELEM_SIZE, policy_named
from models.catalogue import model_named
from models.machine import Platform
from properties import binder
from properties.base import Verdict
from properties.binder import REGROW, WASTE, JudgedPredicate, _sym
from verify.check.engine import check
from verify.search.deepening import Deepening, Reached, deepening
from verify.search.sequences import Unrolling, reaches
from verify.search.solver import Answer, Solving

PLAT = Platform(ELEM_SIZE, 4096)
SOLVING = Solving(60_000)


@pytest.mark.parametrize(
    ("policy", "bad", "first"),
    [
        ("v6", REGROW, 6),  # 3 registrations, 3 deregistrations, then the registration that reallocates
        ("never", WASTE, 5),  # 3 registrations (capacity 4), then 3 deregistrations: 4 >= 4 * (0 + 1)
    ],
)
def test_the_first_violating_operation_is_where_whole_queries_first_find_one(
    policy: str, bad: JudgedPredicate, first: int
) -> None:
    search = Deepening(PLAT, policy_named(policy), by_retain=False)
    reached = search.first(bad.name, bad.at, 7, SOLVING.timeout_ms)
    sp = _sym(4096)
    assert reached.answer is Answer.SAT
    # Whole queries: no violation in `at` operations, one in `at + 1`.
    assert reaches(sp, policy_named(policy), reached.at, bad.at, SOLVING)[0].answer is Answer.UNSAT
    assert reaches(sp, policy_named(policy), reached.at + 1, bad.at, SOLVING)[0].answer is Answer.SAT
    assert reached.at == first


def test_properties_of_one_policy_share_the_search_and_its_refuted_operations() -> None:
    search = deepening(PLAT, policy_named("v4"), False)
    assert deepening(PLAT, policy_named("v4"), False) is search
    assert deepening(PLAT, policy_named("v4"), True) is not search
    assert search.first(REGROW.name, REGROW.at, 3, SOLVING.timeout_ms).answer is Answer.UNSAT
    # Asked again, the refuted operations are not asked again; deeper ones are.
    assert search.first(REGROW.name, REGROW.at, 4, SOLVING.timeout_ms).at == 4


def test_a_violation_within_the_default_depth_has_the_default_depths_trace_when_searched_deeper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(binder, "BMC_DEPTH", 7)  # a smaller default, for a quicker test
    prop = next(p for p in binder.PROPERTIES if p.id == "binder.no-immediate-regrow.bmc")
    at_default = prop.check(policy_named("v6"), 4096, SOLVING, 7)
    deeper = prop.check(policy_named("v6"), 4096, SOLVING, 8)
    assert at_default.verdict is deeper.verdict is Verdict.VIOLATED
    assert deeper.actions == at_default.actions
    assert "up to 8 operations" in deeper.scope


def test_only_a_depth_beyond_the_default_is_searched_incrementally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binder, "BMC_DEPTH", 4)
    searched: list[int] = []
    original = Deepening.first

    def spy(self: Deepening, name: str, at: Any, depth: int, timeout_ms: int) -> Reached:
        searched.append(depth)
        return original(self, name, at, depth, timeout_ms)

    monkeypatch.setattr(Deepening, "first", spy)
    prop = next(p for p in binder.PROPERTIES if p.id == "binder.no-immediate-regrow.bmc")
    assert prop.check(policy_named("v4"), 4096, SOLVING, 4).verdict is Verdict.PROVED
    assert searched == []
    found = prop.check(policy_named("v4"), 4096, SOLVING, 5)
    assert found.verdict is Verdict.PROVED and "1-induction" in found.scope
    assert searched == [1]  # the base case of 1-induction: one operation, not five
    # A run that dumps or confirms its queries asks whole ones, each a file; so does retain's unrolling.
    assert not binder._incremental(Solving(60_000, dump_smt=Path("dump")), 5, REGROW)
    assert not binder._incremental(Solving(60_000, second_solver="bitwuzla"), 5, REGROW)
    assert not binder._incremental(SOLVING, 5, binder.KEEPS_OTHERS_FROM_NEW)


@pytest.mark.slow
def test_a_seeded_fault_that_shows_only_beyond_the_default_depth_is_found_at_depth_16() -> None:
    # Shrinking only below cap/8, v6 frees the buffer only from capacity 8: 5 registrations, 5
    # deregistrations, then the registration that reallocates, the 11th operation. A refuted operation
    # that was not refuted for the model, or an unrolling that lost runs, would hide it.
    prop = next(p for p in binder.PROPERTIES if p.id == "binder.no-immediate-regrow.bmc")
    model = model_named("binder/v6").with_faults(frozenset({"binder-trigger-cap-8"}))
    # Within 8 operations no deregistration shrinks at all.
    assert check(prop, model, 4096, SOLVING, 8).verdict is Verdict.VACUOUS
    found = check(prop, model, 4096, SOLVING, 16)
    assert found.verdict is Verdict.VIOLATED and "incremental unrolling" in found.scope
    cex = found.counterexample
    assert cex is not None and len(cex.steps) == 11  # replayed on the Python model by the engine


def test_a_violation_only_the_abstracted_identities_allow_is_unknown_never_violated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The search leaves the process identities out, so it finds a first process 12345 before an operation,
    # which no run of the model registers (its processes are 1000, 1001, ...): the whole query refutes it.
    monkeypatch.setattr(binder, "BMC_DEPTH", 2)

    def first_is_12345(sp: Any, u: Unrolling, i: int) -> Any:
        pre = u.steps[i].pre
        return z3.And(z3.UGT(pre.len, 0), pre.elems[0] == 12345)

    never_true = JudgedPredicate("first-is-12345", lambda plat, steps, mark: False, first_is_12345)
    search = Deepening(PLAT, policy_named("v6"), by_retain=False)
    assert search.first(never_true.name, never_true.at, 3, SOLVING.timeout_ms).answer is Answer.SAT
    found = binder.bmc_from_new(policy_named("v6"), PLAT, SOLVING, 3, never_true)
    assert found.verdict is Verdict.UNKNOWN
    assert found.detail == "a violation at operation 2 that no run of 2 operations confirms"


def test_a_query_bitwuzla_cannot_read_is_decided_by_z3() -> None:
    # A deregistration's elements are a lambda (the copy into a new buffer), which Bitwuzla does not read.
    def first_after_is_12345(sp: Any, u: Unrolling, i: int) -> Any:
        post = u.steps[i].post
        return z3.And(z3.UGT(post.len, 0), z3.Not(u.is_register[i]), post.elems[0] == 12345)

    search = Deepening(PLAT, policy_named("v6"), by_retain=False)
    # The first deregistration that leaves a process is the third operation; its identities are abstracted.
    assert search.first("first-after-is-12345", first_after_is_12345, 4, SOLVING.timeout_ms) == Reached(Answer.SAT, 2)
