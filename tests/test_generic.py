"""The generic Vec<T, A>::shrink_to and linux-next's vrealloc: the models, their agreement, their traces."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from models.allocator import Allocation, Kind, Outcome
from models.catalogue import MODELS, model_named
from models.machine import PRESETS, Platform
from models.variants import MERGED, KernelCode
from models.vec import Push, Reserve, ShrinkTo, Step, Truncate, VecState, step, with_capacity
from properties.registry import all_properties
from tests.test_regression import run_pytest
from verify.check import mutants
from verify.check.crosscheck import check_invariants, check_transition
from verify.check.engine import check
from verify.cli import main
from verify.search.solver import Solving
from verify.traces.regression import as_pytest
from verify.traces.replay import replay
from verify.traces.trace import Trace, TraceError, load, load_text, save

NEXT = KernelCode("generic", "kvmalloc", "next")
V7_1 = KernelCode("generic", "kvmalloc", "v7.1")
VMALLOC_ONLY = Outcome(kmalloc_ok=False, vmalloc_ok=True)


def vmalloc_vec(plat: Platform, nbytes: int) -> VecState:
    """A KVVec<u8> whose buffer is a fresh kvmalloc area of `nbytes`, holding three elements."""
    v = with_capacity(plat, nbytes, VMALLOC_ONLY).post
    for i in range(3):
        v = step(plat, v, Push(i)).post
    assert v.buf is not None and v.buf.kind is Kind.VMALLOC
    return v


def test_linux_next_vrealloc_frees_the_pages_past_the_new_size() -> None:
    plat = Platform(1, 4096, code=NEXT)
    s = step(plat, vmalloc_vec(plat, 200_000), ShrinkTo(5000))
    assert s.ok and s.post.buf == Allocation(1, Kind.VMALLOC, 5000, 8192)
    assert s.effects.allocated is None and s.effects.copied is None and s.effects.freed is None


def test_v7_1_vrealloc_keeps_every_page() -> None:
    plat = Platform(1, 4096, code=V7_1)
    s = step(plat, vmalloc_vec(plat, 200_000), ShrinkTo(5000))
    assert s.ok and s.post.buf == Allocation(1, Kind.VMALLOC, 5000, 200_704)


def test_linux_next_vrealloc_keeps_the_pages_of_a_huge_mapping() -> None:
    plat = replace(PRESETS["arm64-4k"].platform(1), code=NEXT)
    v = vmalloc_vec(plat, 200_000)
    assert v.buf is not None and v.buf.huge and v.buf.physical == 262_144  # 64 KiB contiguous PTEs
    s = step(plat, v, ShrinkTo(5000))
    assert s.post.buf == Allocation(1, Kind.VMALLOC, 5000, 262_144, huge=True)
    ignoring = step(plat, v, ShrinkTo(5000), frozenset({"vrealloc-shrink-ignores-huge"}))
    assert ignoring.post.buf is not None and ignoring.post.buf.physical == 8192
    assert ignoring.post.invariant_violations(plat)


def test_only_linux_next_models_track_the_mapping() -> None:
    """v6's and v7.1's models never mark an area huge: their traces stay as they were."""
    for code in (MERGED, V7_1):
        plat = replace(PRESETS["arm64-4k"].platform(1), code=code)
        v = vmalloc_vec(plat, 200_000)
        assert v.buf is not None and not v.buf.huge


def test_generic_shrink_reallocs_with_the_models_allocator() -> None:
    kvec = Platform(1, 4096, code=KernelCode("generic", "kmalloc"))
    v = step(kvec, with_capacity(kvec, 20_000).post, Push(7)).post
    s = step(kvec, v, ShrinkTo(0))
    assert s.ok and s.post.buf is not None and s.post.buf.kind is Kind.KMALLOC and s.post.buf.requested == 1
    vvec = Platform(1, 4096, code=KernelCode("generic", "vmalloc", "next"))
    v = with_capacity(vvec, 100).post
    assert v.buf == Allocation(1, Kind.VMALLOC, 100, 4096)  # Vmalloc serves a page below a page too
    assert step(vvec, v, ShrinkTo(0)).post.buf is None


def test_v6_needs_kvmalloc() -> None:
    with pytest.raises(ValueError, match="KVVec"):
        KernelCode("v6", "kmalloc")
    with pytest.raises(ValueError, match="vrealloc is one of"):
        KernelCode("generic", "kvmalloc", "v7.2")


def walks(plat: Platform) -> list[list[object]]:
    """Short operation sequences through every path: kmalloc and vmalloc buffers, shrinks, growth, failures."""
    page = plat.page_size
    outcomes = [Outcome(), VMALLOC_ONLY, Outcome(False, False)]
    out: list[list[object]] = []
    for start, size in ((Outcome(), 40), (VMALLOC_ONLY, 3 * page), (VMALLOC_ONLY, 300_000)):
        ops: list[object] = [Reserve(size, start), Push(1), Push(2), Push(3)]
        for o in outcomes:
            ops += [ShrinkTo(2 * page + 1, o), Reserve(5 * page, o), ShrinkTo(page, o), Truncate(1), ShrinkTo(0, o)]
        out.append(ops)
    return out


# Every generic model's code with 4 KiB pages, and linux-next's vrealloc where areas are mapped huge.
GENERIC_PLATFORMS = [Platform(1, 4096, code=m.code) for m in MODELS if m.code.generic] + [
    replace(PRESETS["arm64-4k"].platform(1), code=NEXT)
]


@pytest.mark.parametrize("plat", GENERIC_PLATFORMS, ids=lambda p: f"{p.code.allocator}-{p.code.vrealloc}-{p.page_size}"
                         f"{'-huge' if p.huge_sizes else ''}")
def test_both_encodings_take_the_same_transitions(plat: Platform) -> None:
    """Every step of the walks: the Z3 encoding's only next state is the Python model's, and both keep
    the type invariants (which both encodings judge alike)."""
    for ops in walks(plat):
        v = VecState()
        for op in ops:
            s = step(plat, v, op)  # type: ignore[arg-type]
            check_transition(plat, s)
            assert not s.post.invariant_violations(plat), (op, s.post)
            check_invariants(plat, s.post)
            v = s.post


@pytest.fixture(scope="module")
def generic_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prop = next(p for p in all_properties(4096) if p.id == "shrink.frees-as-v6.vmalloc-path")
    result = check(prop, model_named("kvvec-generic-next/u8"), 4096, Solving(60_000))
    assert result.counterexample is not None
    path, _ = save(result.counterexample, tmp_path_factory.mktemp("cex"))
    return path


def test_a_generic_trace_records_its_choices_and_replays(generic_trace: Path) -> None:
    meta = json.loads(generic_trace.read_text())["#meta"]
    assert meta["variant"]["choices"] == {"shrink": "generic", "vrealloc": "next"}
    replayed = replay(load(generic_trace))
    assert replayed.reproduces and replayed.trace.platform.code == NEXT


def test_a_trace_whose_choices_are_not_its_models_is_refused(generic_trace: Path) -> None:
    doc = json.loads(generic_trace.read_text())
    doc["#meta"]["variant"]["choices"] = {"shrink": "generic", "vrealloc": "v7.1"}
    with pytest.raises(TraceError, match=re.escape("#meta.variant.choices")):
        load_text(json.dumps(doc), "edited.itf.json")
    del doc["#meta"]["variant"]["choices"]
    with pytest.raises(TraceError, match=re.escape("#meta.variant.choices")):
        load_text(json.dumps(doc), "edited.itf.json")


def test_a_merged_models_trace_has_no_choices() -> None:
    for path in Path("counterexamples").glob("*kvvec-v6*.itf.json"):
        assert "choices" not in json.loads(path.read_text())["#meta"]["variant"], path


def test_generated_pytest_of_a_generic_trace_runs_that_code(generic_trace: Path, tmp_path: Path) -> None:
    source = as_pytest(load_trace(generic_trace))
    assert "code=KernelCode(shrink='generic', vrealloc='next')" in source.replace('"', "'")
    out = run_pytest(source, tmp_path)
    assert "1 failed, 1 passed" in out, out


def load_trace(path: Path) -> Trace:
    return replay(load(path)).trace


def test_list_shows_the_platform_dependence_beside_the_models_declared_violated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "shrink.frees-as-v6.when-v6-holds-pages" in x)
    assert line.endswith(
        "[expected VIOLATED on kvvec-generic-v7.1/u8 (and on the others with --platform arm64-4k, arm64-16k,"
        " arm64-64k), else PROVED]"
    )


def test_the_generic_faults_are_seeded_into_the_generic_models() -> None:
    assert [m.name for m in mutants.models_for("generic-layout-kept")] == ["kvvec-generic-next/u8"]
    huge = mutants.models_for("vrealloc-shrink-ignores-huge", 65536)  # its own platform, whatever the run's
    assert [m.name for m in huge] == ["kvvec-generic-next/u8@arm64-4k"]


@pytest.mark.parametrize(
    ("prop_id", "model", "cap", "min_capacity", "generic_physical", "v6_physical"),
    [
        # README, "The generic shrink_to": the counterexamples its table states.
        ("shrink.frees-as-v6.when-v6-holds-pages", "kvvec-generic-v7.1/u8", 8193, 4097, 12288, 8192),
        ("shrink.frees-as-v6.vmalloc-path", "kvvec-generic-next/u8", 4097, 1, 4096, 8),
        ("shrink.frees-as-v6.vmalloc-path", "kvvec-generic-v7.1/u8", 4097, 1, 8192, 8),
        ("shrink.frees-as-v6.when-v6-holds-pages", "kvvec-generic-next/u8@arm64-4k", 8193, 4097, 65536, 8192),
    ],
)
def test_the_readme_generic_findings_are_what_the_engine_finds(
    prop_id: str, model: str, cap: int, min_capacity: int, generic_physical: int, v6_physical: int
) -> None:
    spec = model_named(model)
    page = spec.page_size(4096)
    prop = next(p for p in all_properties(page) if p.id == prop_id)
    result = check(prop, spec, page, Solving(60_000))
    assert result.counterexample is not None
    s = result.counterexample.steps[-1]
    assert isinstance(s, Step) and isinstance(s.action, ShrinkTo)
    plat = result.counterexample.platform
    assert (s.pre.capacity(plat), s.action.min_capacity) == (cap, min_capacity)
    assert s.post.physical() == generic_physical
    assert step(replace(plat, code=MERGED), s.pre, s.action).post.physical() == v6_physical
    assert f"cap={cap}" in README and f"shrink_to({min_capacity})" in README


README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
