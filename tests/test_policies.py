"""Binder policies as data: the policy language, its two encodings, and `--policy` / [tool.verify.policies]."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from models.binder import POLICIES, Policy, policy_named
from models.catalogue import chosen_policies, policy_model
from models.policy_lang import MASK, PolicyError, compile_policy, to_rust
from properties.base import Verdict
from properties.binder import PROPERTIES
from verify.check.engine import check
from verify.search.solver import Solving
from verify.traces.replay import replay
from verify.traces.trace import load, load_text
from verify.traces.trace_input import TraceError

REPO = Path(__file__).resolve().parent.parent

# The rules the series' policies had as Python before they were data: the definitions must say the same.
HAND_WRITTEN = {
    "v6": (lambda n, cap: n < cap // 4, lambda n, cap: n * 2),
    "v4": (lambda n, cap: n < cap // 4, lambda n, cap: cap // 2),
    "naive": (lambda n, cap: n < cap // 2, lambda n, cap: n),
    "never": (lambda n, cap: False, lambda n, cap: cap),
}

usize = st.integers(0, MASK)
small = st.integers(0, 1 << 20)


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
@given(n=small, cap=small)
@settings(max_examples=200, deadline=None)
def test_the_built_in_definitions_mean_what_the_series_wrote(name: str, n: int, cap: int) -> None:
    policy, (trigger, target) = policy_named(name), HAND_WRITTEN[name]
    assert policy.trigger(n, cap) == trigger(n, cap)
    assert policy.target(n, cap) == target(n, cap)
    assert policy.arithmetic_fault(n, cap) is None


RULES = [
    "len < cap/4 => len*2",
    "len <= cap/3 && cap > 64 => max(len*2, 16)",
    "len < cap/4 || len == 0 => min(cap/2, len + 8)",
    "!(len >= cap/2) => cap - len",
    "len * 4 < cap => (len + 1) * 3 % 7",
    "true => cap / len",
    "len < cap => len - 1",
    "len < cap/2 && cap / len > 3 => len",
]


def _z3_value(term: object) -> object:
    value = z3.simplify(term)
    return value.as_long() if z3.is_bv_value(value) else z3.is_true(value)


@pytest.mark.parametrize("rule", RULES)
@given(n=st.one_of(small, usize), cap=st.one_of(small, usize))
@settings(max_examples=150, deadline=None)
def test_python_and_z3_agree_on_every_value_and_every_fault(rule: str, n: int, cap: int) -> None:
    c = compile_policy(rule)
    bn, bcap = z3.BitVecVal(n, 64), z3.BitVecVal(cap, 64)
    assert _z3_value(c.trigger_z3(bn, bcap)) == c.trigger(n, cap)
    assert _z3_value(c.target_z3(bn, bcap)) == c.target(n, cap)
    assert _z3_value(c.fault_z3(bn, bcap)) == (c.fault(n, cap) is not None)


def test_faults_are_rusts_overflows_and_divisions_by_zero() -> None:
    assert compile_policy("len < cap/4 => len*2").fault(1 << 63, MASK) is None  # the trigger is false: no target
    assert compile_policy("true => len*2").fault(1 << 63, 0) == "'*' at column 12 overflows a usize"
    assert compile_policy("true => len - cap").fault(0, 1) == "'-' at column 13 underflows a usize"
    assert compile_policy("true => cap / len").fault(0, 5) == "division by zero at column 13"
    assert compile_policy("len == 0 || cap / len > 2 => 1").fault(0, 5) is None  # || short-circuits
    assert compile_policy("len != 0 && cap % len > 2 => 1").fault(0, 5) is None  # && too
    wrapped = compile_policy("true => len + 2")
    assert wrapped.target(MASK, 0) == 1 and wrapped.fault(MASK, 0) is not None  # usize wraps


@pytest.mark.parametrize(
    ("rule", "column", "says"),
    [
        ("len < cap/4 => len*", 20, "ends early"),
        ("len < size => len", 7, "unexpected 's'"),
        ("len => 2", 5, "expected a comparison"),
        ("len < cap/4 len*2", 13, "unexpected 'len'"),
        ("len < cap/4 => len*2 )", 22, "expected the end of the policy"),
        ("len < 18446744073709551616 => 1", 7, "does not fit a 64-bit usize"),
        ("", 1, "ends early"),
    ],
)
def test_a_bad_rule_is_one_error_naming_its_column(rule: str, column: int, says: str) -> None:
    with pytest.raises(PolicyError) as e:
        compile_policy(rule)
    assert e.value.column == column and says in str(e.value) and str(e.value).startswith(f"column {column}: ")


def test_rules_become_rust_with_its_precedence_kept() -> None:
    assert to_rust("len < cap/4 => len*2", "n", "c") == ("n < c / 4", "n * 2")
    assert to_rust("false => cap", "n", "c") == (None, "c")
    assert to_rust("!(len < 3) && (cap - len) * 2 > 9 => max(len, 2)", "n", "c") == (
        "!(n < 3) && ((c - n) * 2 > 9)", "core::cmp::max(n, 2)"
    )


def test_seeded_rule_faults_rewrite_the_rule() -> None:
    from models.binder import with_faults

    faulted = with_faults(policy_named("v4"), frozenset({"binder-trigger-cap-8", "binder-target-len-8"}))
    assert faulted.rule == "len < cap/8 => len*8" and faulted.name == "v4"
    assert with_faults(policy_named("v6"), frozenset()) is policy_named("v6")


def test_policy_names_are_checked() -> None:
    with pytest.raises(ValueError, match="taken by a built-in"):
        policy_model("v6", "true => len")
    with pytest.raises(ValueError, match="a lower-case letter"):
        policy_model("My Policy", "true => len")
    with pytest.raises(ValueError, match="--policy 'nope': no such policy"):
        chosen_policies(("nope",), ())
    models = chosen_policies(("v6", "len < cap/8 => len*2", "len < cap/2 => len"), ())
    assert [m.name for m in models] == ["binder/v6", "binder/custom", "binder/custom-2"]
    assert models[1].binder_policy() is models[1].binder_policy()  # one Policy per definition


def _arithmetic() -> object:
    return next(p for p in PROPERTIES if p.id == "binder.policy-arithmetic")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_the_series_policies_never_wrap(policy: Policy) -> None:
    model = next(m for m in chosen_policies((policy.name,), ()))
    assert check(_arithmetic(), model, 4096, Solving(60_000), 8).verdict is Verdict.PROVED  # type: ignore[arg-type]


def test_an_underflowing_policy_is_a_replayed_finding(tmp_path: Path) -> None:
    model = policy_model("underflows", "len < cap/4 => len - 1")
    result = check(_arithmetic(), model, 4096, Solving(60_000), 8)  # type: ignore[arg-type]
    assert result.verdict is Verdict.VIOLATED and result.counterexample is not None
    cex = result.counterexample
    assert cex.start == "new" and cex.steps[-1].post.len == 0  # the last process leaves: 0 - 1
    path = tmp_path / cex.file_name()
    path.write_text(cex.text())
    replayed = replay(load(path))
    assert replayed.reproduces and replayed.trace.text() == cex.text()
    # The file carries the rule; a file whose rule is changed or broken says so.
    assert '"rule": "len < cap/4 => len - 1"' in cex.text()
    with pytest.raises(TraceError, match="column"):
        load_text(cex.text().replace("len < cap/4 => len - 1", "len < cap/4 => len -"), "x.itf.json")
    # A rule changed to one without the fault parses, and the trace no longer shows a violation.
    changed = load_text(cex.text().replace("len < cap/4 => len - 1", "len < cap/4 => len"), "x.itf.json")
    with contextlib.suppress(TraceError):  # or a recorded state the changed rule does not compute
        assert not replay(changed).reproduces
    with pytest.raises(TraceError):  # a built-in policy's name cannot be redefined by a file
        load_text(cex.text().replace("binder/underflows", "binder/v6").replace('"underflows"', '"v6"'), "x")


def verify(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verify", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_a_bad_policy_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = verify("run", "binder", "--policy", "len < cap/4 => len*", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "verify: error: --policy 'len < cap/4 => len*': column 20: the policy ends early;"
        " expected (, a number, cap, len, min/max"
    ]


def test_config_policies_are_checked_models(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.verify.policies]\neighth = "len < cap/8 => len*2"\n')
    done = verify("run", "policy-arithmetic", "--no-cache", "--counterexamples", "cex", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split()[:3] for line in done.stdout.splitlines() if line.startswith("PROVED")]
    assert ["PROVED", "binder.policy-arithmetic", "binder/eighth"] in rows and len(rows) == 5
    (tmp_path / "pyproject.toml").write_text('[tool.verify.policies]\neighth = "len < cap/8 => len*"\n')
    bad = verify("run", "policy-arithmetic", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "[tool.verify]: policies.eighth = 'len < cap/8 => len*': column 20: the policy ends early" in bad.stderr


@pytest.mark.parametrize("rule", RULES)
@given(values=st.lists(st.tuples(st.one_of(small, usize), st.one_of(small, usize)), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_arrays_evaluate_as_each_of_their_values(rule: str, values: list[tuple[int, int]]) -> None:
    # The packed explorer applies a rule to a whole level at once.
    import numpy as np

    c = compile_policy(rule)
    n = np.array([v[0] for v in values], dtype=object)
    cap = np.array([v[1] for v in values], dtype=object)
    assert list(c.trigger(n, cap)) == [c.trigger(a, b) for a, b in values]
    assert list(c.target(n, cap)) == [c.target(a, b) for a, b in values]
