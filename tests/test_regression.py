"""Counterexamples as pictures and as regression tests: the PNG plot, the pytest module, the KUnit test."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.binder import Deregister
from models.catalogue import ModelSpec, model_named, policy_model
from models.vec import Reserve, VecState
from properties.registry import all_properties
from verify.check.engine import check
from verify.search.solver import Solving
from verify.traces.plot import plot
from verify.traces.regression import as_kunit, as_pytest, rust_type
from verify.traces.replay import replay
from verify.traces.trace import Trace, load, save

REPO = Path(__file__).resolve().parent.parent
KERNEL_STUB = REPO / "tests" / "kernel_stub" / "lib.rs"
PAGE = 4096
TIMEOUT_MS = 60_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Traces the engine finds, by name: (property, model).
CASES: dict[str, tuple[str, ModelSpec]] = {
    "binder": ("binder.no-immediate-regrow", model_named("binder/naive")),
    "single": ("shrink.change-lowers-physical", model_named("kvvec-v6/u8")),
    # A KUnit scenario broken by a seeded fault: a single call whose initial state comes from a setup.
    "setup": (
        "scenario.vmalloc-min-capacity-shrinks",
        model_named("kvvec-v6/u8").with_faults(frozenset({"target-ignores-min-capacity"})),
    ),
    # A merged KUnit test whose unwrap panics: its calls before the failing one, with their outcomes, as the setup.
    "program": ("kunit.shrink.shrink-unwrap-ok", model_named("kvvec-v6/u8")),
    # A zero-sized T, whose capacity is usize::MAX, broken by a seeded fault.
    "zst": ("shrink.zst-noop", model_named("kvvec-v6/zst").with_faults(frozenset({"zst-check-dropped"}))),
    # A binder trace from the solver's arbitrary state, broken by a fault in the policy's rule (shrink_to(len * 8)).
    "binder-arbitrary": (
        "binder.page-rule-never-refuses",
        model_named("binder/v6").with_faults(frozenset({"binder-target-len-8"})),
    ),
    # A binder trace from KVVec::new() broken by a fault in binder's deregistration (it drops the last process).
    "binder-fault": (
        "binder.keeps-others",
        model_named("binder/v6").with_faults(frozenset({"binder-dereg-removes-last"})),
    ),
    # Registrations only (the last one fails and drops a process): the test has no deregistration.
    "register-only": (
        "binder.failed-register-unchanged",
        model_named("binder/v6").with_faults(frozenset({"binder-failed-register-pops"})),
    ),
    # A policy defined in the policy language, whose target underflows once the last process leaves: the
    # trace carries its rule, and the tests generated from it define the policy by that rule.
    "binder-custom": ("binder.policy-arithmetic", policy_model("underflows", "len < cap/4 => len - 1")),
    # A single call of reserve, broken by an allocator fault.
    "reserve": (
        "reserve.memory-safe",
        model_named("kvvec-v6/u8").with_faults(frozenset({"krealloc-copies-new-size"})),
    ),
}
# Within one operation of KVVec::new() the page rule holds: the trace keeps the solver's state 0.
BMC_DEPTH = {"binder-arbitrary": 1}


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    props = {p.id: p for p in all_properties(PAGE)}
    found = {}
    for name, (prop_id, model) in CASES.items():
        result = check(props[prop_id], model, PAGE, Solving(TIMEOUT_MS), BMC_DEPTH.get(name, 8))
        assert result.counterexample is not None, f"{prop_id} on {model.name} has no counterexample"
        found[name] = result.counterexample
    return found


# --- plot ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["binder", "single", "setup", "zst"])
def test_plot_is_a_png(traces: dict[str, Trace], name: str) -> None:
    data = plot(traces[name])
    assert len(data) > 1000
    assert data.startswith(PNG_SIGNATURE)


# --- the pytest module ---------------------------------------------------------------------


def _pytest_output(target: Path, timeout: int) -> str:
    """pytest's output on a generated module or a directory of them, run in a subprocess as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout + done.stderr


def run_pytest(source: str, tmp_path: Path) -> str:
    """pytest's output on one generated module."""
    path = tmp_path / "test_generated.py"
    path.write_text(source)
    return _pytest_output(path, 120)


GENERATED = ["single", "binder", "setup", "binder-arbitrary", "binder-fault", "reserve", "program", "binder-custom"]


def _module_file(name: str) -> str:
    return f"test_generated_{name.replace('-', '_')}.py"


@pytest.fixture(scope="module")
def generated_outcomes(traces: dict[str, Trace], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Each generated module's test outcomes, from one pytest run over all of them, as a user would run them.

    One run, not one per module: the interpreter and its imports start once. Each module is a
    file of its own, its outcome lines (`PASSED path::test`) told apart by the file's name.
    """
    directory = tmp_path_factory.mktemp("generated")
    for name in GENERATED:
        source = as_pytest(traces[name])
        compile(source, _module_file(name), "exec")
        (directory / _module_file(name)).write_text(source)
    out = _pytest_output(directory, 300)
    assert f"{len(GENERATED)} failed, {len(GENERATED)} passed" in out, out
    outcome = r"^(?:PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) \S*"
    return {name: re.findall(rf"{outcome}{re.escape(_module_file(name))}::\S+", out, re.M) for name in GENERATED}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_pytest_reproduces_and_its_regression_test_fails(
    generated_outcomes: dict[str, list[str]], name: str
) -> None:
    outcomes = generated_outcomes[name]
    assert len(outcomes) == 2, outcomes
    # The counterexample reproduces; the regression test to keep fails while it does.
    assert any(re.fullmatch(r"PASSED \S+::test_\w+_violation_reproduces", o) for o in outcomes), outcomes
    assert any(re.match(r"FAILED \S+::test_\w+_holds\b", o) for o in outcomes), outcomes


def test_generated_pytest_names_the_property_and_the_model(traces: dict[str, Trace]) -> None:
    source = as_pytest(traces["single"])
    assert "def test_shrink_change_lowers_physical_kvvec_v6_u8_violation_reproduces() -> None:" in source
    assert "def test_shrink_change_lowers_physical_kvvec_v6_u8_holds() -> None:" in source
    assert 'PROPERTY = "shrink.change-lowers-physical"' in source
    assert traces["single"].one_line()[:40] in source.replace("\n", " ")
    binder = as_pytest(traces["binder"])
    assert 'POLICY = policy_named("naive")' in binder and "binder_step(" in binder
    custom = as_pytest(traces["binder-custom"])
    assert 'POLICY = Policy.define("underflows", "len < cap/4 => len - 1")' in custom


def test_kunit_writes_a_defined_policy_in_rust(traces: dict[str, Trace]) -> None:
    test = as_kunit(traces["binder-custom"])
    assert "if all_procs.len() < all_procs.capacity() / 4 {" in test
    assert "let target = all_procs.len() - 1;" in test


def test_the_kinds_of_trace_are_the_ones_named(traces: dict[str, Trace]) -> None:
    assert traces["binder-arbitrary"].start == "arbitrary" and traces["binder-arbitrary"].initial != VecState()
    assert traces["binder-fault"].start == "new" and traces["binder-fault"].faults
    assert isinstance(traces["reserve"].steps[-1].action, Reserve)


def test_generated_pytest_rebuilds_an_arbitrary_start_and_seeds_the_faults(traces: dict[str, Trace]) -> None:
    source = as_pytest(traces["binder-arbitrary"])
    module: dict[str, object] = {}
    exec(compile(source, "test_generated.py", "exec"), module)
    assert module["INITIAL"] == traces["binder-arbitrary"].initial
    assert "    state = INITIAL\n" in source
    assert 'FAULTS = frozenset({"binder-target-len-8"})' in source
    assert 'POLICY = with_faults(policy_named("v6"), FAULTS)' in source
    assert "state = VecState()" in as_pytest(traces["binder-fault"])


def test_one_line_shows_reserves_argument(traces: dict[str, Trace]) -> None:
    action = traces["reserve"].steps[-1].action
    assert isinstance(action, Reserve)
    assert f"; reserve({action.additional}) with " in traces["reserve"].one_line()


def test_a_saved_reserve_trace_replays_and_generates(traces: dict[str, Trace], tmp_path: Path) -> None:
    path, _ = save(traces["reserve"], tmp_path)
    replayed = replay(load(path))
    assert replayed.reproduces and replayed.trace == traces["reserve"]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
@pytest.mark.parametrize(
    "name", ["single", "binder", "setup", "zst", "binder-arbitrary", "binder-fault", "reserve", "program"]
)
def test_generated_pytest_is_ruff_clean(traces: dict[str, Trace], name: str, tmp_path: Path) -> None:
    path = tmp_path / "test_generated.py"
    path.write_text(as_pytest(traces[name]))
    for config in (["--isolated"], ["--config", str(REPO / "pyproject.toml")]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", *config, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


# --- the KUnit test -----------------------------------------------------------------------


def balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def test_kunit_for_a_single_call(traces: dict[str, Trace]) -> None:
    rust = as_kunit(traces["single"])
    assert "#[test]" in rust
    assert "fn test_shrink_change_lowers_physical_kvvec_v6_u8() -> Result {" in rust
    assert "KVVec::<u8>::with_capacity(" in rust
    assert "shrink_to(" in rust and "GFP_KERNEL" in rust
    assert "is_vmalloc_addr" in rust and "// SAFETY:" in rust
    assert "cannot be forced" in rust
    assert rust.rstrip().endswith("Ok(())\n}")
    assert balanced(rust)


def test_kunit_for_a_binder_trace(traces: dict[str, Trace]) -> None:
    rust = as_kunit(traces["binder"])
    assert "#[test]" in rust and "fn " in rust
    assert "KVVec<u64>" in rust
    assert "retain(" in rust and "shrink_to(" in rust and "GFP_KERNEL" in rust
    # naive: shrink to fit once half the slots are unused.
    assert "all_procs.len() < all_procs.capacity() / 2" in rust
    assert "push(" in rust and "deregister(&mut all_procs," in rust
    assert "assert_eq!(all_procs.capacity(), cap_before);" in rust
    assert balanced(rust)


def test_kunit_builds_an_arbitrary_start_and_writes_the_policys_rule_fault(traces: dict[str, Trace]) -> None:
    trace = traces["binder-arbitrary"]
    s0 = trace.initial
    rust = as_kunit(trace)
    assert "let mut all_procs = KVVec::<u64>::new();" not in rust
    assert f"let mut all_procs = KVVec::<u64>::with_capacity({s0.layout_len}, GFP_KERNEL)?;" in rust
    assert f"assert_eq!(all_procs.capacity(), {s0.layout_len});" in rust
    assert rust.count("all_procs.push(") >= len(s0.elems.runs)
    # The rule fault is the test's own code: deregister shrinks to len * 8, as the faulted policy does.
    assert "    let target = all_procs.len() * 8;" in rust and "all_procs.len() * 2" not in rust
    assert balanced(rust)


def test_kunit_says_which_seeded_faults_it_cannot_reproduce(traces: dict[str, Trace]) -> None:
    rust = " ".join(line.removeprefix("// ") for line in as_kunit(traces["binder-fault"]).splitlines())
    assert "seeded fault (binder-dereg-removes-last) is in code the test only calls" in rust
    assert "fault" not in as_kunit(traces["binder"])


def test_kunit_without_a_deregistration_has_no_deregister(traces: dict[str, Trace]) -> None:
    assert not any(isinstance(s.action, Deregister) for s in traces["register-only"].steps)
    rust = as_kunit(traces["register-only"])
    assert "fn deregister(" not in rust and "Registering pushes the process." in rust
    assert "fn deregister(" in as_kunit(traces["binder"])


def test_kunit_for_a_reserve_trace(traces: dict[str, Trace]) -> None:
    action = traces["reserve"].steps[-1].action
    assert isinstance(action, Reserve)
    rust = as_kunit(traces["reserve"])
    assert f"let ret = v.reserve({action.additional}, GFP_KERNEL);" in rust and "shrink_to(" not in rust
    assert f"assert!(v.capacity() - v.len() >= {action.additional});" in rust
    assert balanced(rust)


def test_kunit_for_a_merged_test_replays_its_calls_with_their_outcomes(traces: dict[str, Trace]) -> None:
    rust = as_kunit(traces["program"])
    # with_capacity's kmalloc failed (a vmalloc buffer), then shrink_to(PAGE_SIZE)'s kmalloc fails too.
    assert "v.reserve(4 * PAGE_SIZE, GFP_KERNEL)?;" in rust and "kmalloc fails, vmalloc ok" in rust
    assert "v.shrink_to(PAGE_SIZE, GFP_KERNEL)" in rust and "it returned Err" in rust
    assert balanced(rust)


def test_kunit_for_a_setup_trace_and_a_zero_sized_t(traces: dict[str, Trace]) -> None:
    rust = as_kunit(traces["setup"])
    assert "KVVec::<u8>::new()" in rust and "v.reserve(4 * PAGE_SIZE, GFP_KERNEL)?;" in rust
    assert "shrink_to(2 * PAGE_SIZE, GFP_KERNEL)" in rust
    assert balanced(rust)
    zst = as_kunit(traces["zst"])
    assert "KVVec::<()>::with_capacity(" in zst and "usize::MAX" in zst and "shrink_to(" in zst
    assert balanced(zst)


@pytest.mark.parametrize(
    ("size", "name"), [(0, "()"), (1, "u8"), (2, "u16"), (4, "u32"), (8, "u64"), (24, "[u8; 24]"), (4096, "[u8; 4096]")]
)
def test_rust_element_type_follows_the_size(size: int, name: str) -> None:
    assert rust_type(size) == name


# --- the templates ------------------------------------------------------------------------


def test_the_templates_are_package_data() -> None:
    """An installed verify has the templates the generators fill: pyproject's package data names each one."""
    import tomllib

    from verify.traces.regression import TEMPLATES

    package = TEMPLATES.parent
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    name = ".".join(package.relative_to(REPO).parts)
    shipped = {path for pattern in patterns.get(name, []) for path in package.glob(pattern)}
    templates = set(TEMPLATES.glob("*.j2"))
    assert templates and templates <= shipped


def test_a_missing_template_value_is_an_error() -> None:
    from jinja2 import UndefinedError

    from verify.traces.regression import _template

    with pytest.raises(UndefinedError):
        _template("kunit_test.rs.j2").render()


# --- the KUnit tests compile ----------------------------------------------------------------


def rustc_check(tests: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Type-check KUnit test cases as rustc would in kvec.rs's test module, every warning an error.

    Each case goes into a module of its own inside a stand-in of the kernel's
    `alloc::kvec` (tests/kernel_stub/lib.rs), with the kernel's `use super::*;`
    and `use crate::prelude::*;`.
    """
    # rustup installs into ~/.cargo/bin, which a non-login shell may not have on its PATH.
    rustc = shutil.which("rustc") or shutil.which("rustc", path=str(Path.home() / ".cargo" / "bin"))
    assert rustc is not None, "rustc is needed to type-check the generated KUnit tests"
    modules = [
        f"#[cfg(test)]\nmod case{i} {{\n    use super::*;\n    use crate::prelude::*;\n\n{test}\n}}\n"
        for i, test in enumerate(tests)
    ]
    source = tmp_path / "kernel.rs"
    source.write_text(KERNEL_STUB.read_text().replace("// GENERATED TESTS", "\n".join(modules)))
    command = [rustc, "--edition", "2021", "--test", "--crate-type", "lib", "--crate-name", "kernel"]
    command += ["--emit=metadata", "-D", "warnings", "-o", str(tmp_path / "kernel.rmeta"), str(source)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_every_kunit_test_compiles(traces: dict[str, Trace], tmp_path: Path) -> None:
    committed = [replay(load(path)).trace for path in sorted((REPO / "counterexamples").glob("*.itf.json"))]
    assert committed
    done = rustc_check([as_kunit(t) for t in [*committed, *traces.values()]], tmp_path)
    assert done.returncode == 0, done.stderr


def test_rustc_check_rejects_a_broken_kunit_test(traces: dict[str, Trace], tmp_path: Path) -> None:
    # shrink_to takes the allocation flags too: without them the call does not type-check.
    broken = as_kunit(traces["single"]).replace(", GFP_KERNEL);", ");", 1)
    assert broken != as_kunit(traces["single"])
    done = rustc_check([broken], tmp_path)
    assert done.returncode != 0 and "error[E0061]" in done.stderr
