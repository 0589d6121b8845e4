"""Vacuity: a proof whose premise never happens is reported VACUOUS and fails the run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import z3

from models.catalogue import MODELS, model_named
from properties import binder, kunit, shrink
from properties.base import StepProperty, Verdict
from properties.binder import SequenceProperty
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving

PAGE, TIMEOUT_MS = 4096, 60_000
SOLVING = Solving(TIMEOUT_MS)
PROPS = {p.id: p for p in shrink.PROPERTIES}


def _on_every_model(prop: StepProperty) -> StepProperty:
    return dataclasses.replace(prop, id=f"{prop.id}.everywhere", applies=lambda m: m.policy is None)


def test_err_unchanged_is_vacuous_for_a_zero_sized_t() -> None:
    # shrink_to on a zero-sized T never returns Err, so "an Err leaves the vector unchanged" says nothing.
    result = check(_on_every_model(PROPS["shrink.err-unchanged"]), model_named("kvvec-v6/zst"), PAGE, SOLVING)
    assert result.verdict is Verdict.VACUOUS
    assert result.detail == "premise never happens: shrink_to returns Err"
    assert not result.as_expected


def test_the_same_property_has_a_witness_where_allocations_fail() -> None:
    result = check(PROPS["shrink.err-unchanged"], model_named("kvvec-v6/u8"), PAGE, SOLVING)
    assert result.verdict is Verdict.PROVED


def test_an_unreachable_premise_fails_the_run_with_exit_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    vacuous = _on_every_model(PROPS["shrink.allocator-contract"])
    monkeypatch.setattr(shrink, "PROPERTIES", (*shrink.PROPERTIES, vacuous))
    argv = ["run", vacuous.id, "--no-cache", "--jobs", "1", "--counterexamples", str(tmp_path)]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("VACUOUS   shrink.allocator-contract.everywhere kvvec-v6/zst")
    assert "premise never happens: shrink_to frees a buffer" in out
    assert "1 VACUOUS" in out and "unexpected: shrink.allocator-contract.everywhere on kvvec-v6/zst" in out


@pytest.mark.parametrize("prop", [p for p in shrink.PROPERTIES if p.premise is not None], ids=lambda p: p.id)
def test_every_premise_is_reachable_on_a_sized_model(prop: StepProperty) -> None:
    result = check(prop, model_named("kvvec-v6/u64"), PAGE, SOLVING)
    assert result.verdict is not Verdict.VACUOUS


def test_a_vacuous_proof_is_a_failure_in_the_json_and_sarif_reports(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    import jsonschema

    root = Path(__file__).resolve().parent.parent
    vacuous = _on_every_model(PROPS["shrink.err-unchanged"])
    monkeypatch.setattr(shrink, "PROPERTIES", (*shrink.PROPERTIES, vacuous))
    base = ["run", f"{vacuous.id}", "--no-cache", "--jobs", "1", "--counterexamples", str(tmp_path / "traces")]

    assert main([*base, "--format", "json", "--output", str(tmp_path / "r.json")]) == 1
    document = json.loads((tmp_path / "r.json").read_text())
    jsonschema.Draft202012Validator(json.loads((root / "docs" / "results.schema.json").read_text())).validate(document)
    vacuous_checks = [c for c in document["checks"] if c["verdict"] == "VACUOUS"]
    # A zero-sized T never fails, nor does the generic shrink_to (shrink.never-fails).
    generic = [m.name for m in MODELS if m.code.generic]
    assert [(c["model"], c["outcome"]) for c in vacuous_checks] == [
        ("kvvec-v6/zst", "unexpected"), *((name, "unexpected") for name in generic)
    ]
    assert document["summary"]["verdicts"]["VACUOUS"] == 1 + len(generic)

    assert main([*base, "--format", "sarif", "--output", str(tmp_path / "r.sarif")]) == 1
    results = json.loads((tmp_path / "r.sarif").read_text())["runs"][0]["results"]
    flagged = [r for r in results if r["properties"]["verdict"] == "VACUOUS"]
    assert [(r["kind"], r["level"]) for r in flagged] == [("fail", "error")] * (1 + len(generic))
    capsys.readouterr()


def _on_every_policy(prop_id: str) -> SequenceProperty:
    prop = next(p for p in binder.PROPERTIES if p.id == prop_id)
    return dataclasses.replace(prop, not_for=frozenset())


@pytest.mark.parametrize(
    "prop_id", ["binder.no-immediate-regrow", "binder.no-immediate-regrow.bmc", "binder.page-rule-never-refuses"]
)
def test_a_policy_that_never_shrinks_makes_shrink_properties_vacuous(prop_id: str) -> None:
    # never does not call shrink_to: nothing follows a shrink, and the page rule is never asked.
    result = check(_on_every_policy(prop_id), model_named("binder/never"), PAGE, SOLVING)
    assert result.verdict is Verdict.VACUOUS
    assert result.detail.startswith("premise never happens: ")
    # The same property, and premise, on a policy that shrinks.
    assert check(_on_every_policy(prop_id), model_named("binder/v4"), PAGE, SOLVING).verdict is Verdict.PROVED


def test_binder_properties_skip_never_only_where_their_premise_is_unreachable() -> None:
    never = model_named("binder/never")
    skipped = sorted(p.id for p in binder.PROPERTIES if not p.applies(never))
    assert skipped == ["binder.no-immediate-regrow", "binder.no-immediate-regrow.bmc", "binder.page-rule-never-refuses"]


def test_a_scenario_whose_premise_cannot_happen_is_vacuous() -> None:
    noop = next(s for s in kunit.scenarios(PAGE) if s.id == "scenario.no-page-freed-noop")
    # That shrink_to frees no page, so it calls no allocator and cannot return Err.
    on_err = dataclasses.replace(noop, premise=lambda sp, st: z3.Not(st.ok), premise_text="shrink_to returns Err")
    result = check(on_err, model_named("kvvec-v6/u8"), PAGE, SOLVING)
    assert result.verdict is Verdict.VACUOUS and result.detail == "premise never happens: shrink_to returns Err"
    frees = next(s for s in kunit.scenarios(PAGE) if s.id == "scenario.vmalloc-shrink-frees-pages")
    assert check(frees, model_named("kvvec-v6/u8"), PAGE, SOLVING).verdict is Verdict.PROVED


@pytest.mark.parametrize(
    ("prop_id", "text"),
    [
        ("binder.keeps-others", "a process leaves while another one stays registered"),
        ("binder.invariant-forever", "an operation changes the buffer"),
        ("binder.failed-register-unchanged", "a registration fails"),
    ],
)
@pytest.mark.parametrize("policy", ["v6", "v4", "naive", "never"])
def test_single_step_and_induction_binder_proofs_have_a_witness(prop_id: str, text: str, policy: str) -> None:
    from models.binder import policy_named
    from verify.search.solver import Answer

    prop = next(p for p in binder.PROPERTIES if p.id == prop_id)
    assert prop.premise is not None and prop.premise_text == text
    assert prop.premise(policy_named(policy), PAGE, SOLVING, 8) is Answer.SAT

