"""The platform presets: each allocator fact pinned to the kernel's numbers, in both encodings.

The expected numbers are written out here, worked from the kernel sources the
presets cite (models/machine.py), not computed by the model: a slip in a fact
cannot hide behind the same slip in the other encoding.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import z3

from models import allocator as kv
from models import allocator_z3 as kvz
from models.allocator import Outcome, Recorder
from models.catalogue import model_named
from models.machine import PAGE_SIZE_PRESETS, PRESETS, Platform, preset_named
from verify.cli import main
from verify.config import ConfigError, load

KIB, MIB = 1 << 10, 1 << 20

# preset: (PAGE_SIZE, MAX_PAGE_ORDER, KMALLOC_MAX_SIZE, the first slab classes)
LIMITS = {
    "x86_64": (4096, 10, 4 * MIB, (8, 16, 32, 64, 96, 128, 192, 256)),
    "arm64-4k": (4096, 10, 4 * MIB, (64, 128, 192, 256, 512, 1024)),
    "arm64-4k-nohuge": (4096, 10, 4 * MIB, (64, 128, 192, 256, 512, 1024)),
    "arm64-16k": (16384, 11, 32 * MIB, (64, 128, 192, 256, 512, 1024)),
    "arm64-16k-nohuge": (16384, 11, 32 * MIB, (64, 128, 192, 256, 512, 1024)),
    "arm64-64k": (65536, 13, 512 * MIB, (64, 128, 192, 256, 512, 1024)),
    "arm64-64k-nohuge": (65536, 13, 512 * MIB, (64, 128, 192, 256, 512, 1024)),
}

# (preset, request bytes, ksize of a fresh kmalloc)
KMALLOC = [
    ("x86_64", 1, 8), ("x86_64", 65, 96), ("x86_64", 129, 192), ("x86_64", 8192, 8192),
    ("x86_64", 8193, 16384), ("x86_64", 5 * 4096, 8 * 4096), ("x86_64", 4 * MIB, 4 * MIB),
    ("arm64-4k", 1, 64), ("arm64-4k", 65, 128), ("arm64-4k", 96, 128), ("arm64-4k", 129, 192),
    ("arm64-4k", 193, 256), ("arm64-4k", 8193, 16384),
    ("arm64-16k", 1, 64), ("arm64-16k", 32768, 32768), ("arm64-16k", 32769, 65536),
    ("arm64-16k", 16 * MIB + 1, 32 * MIB), ("arm64-16k", 32 * MIB, 32 * MIB),
    ("arm64-64k", 131072, 131072), ("arm64-64k", 131073, 262144), ("arm64-64k", 256 * MIB + 1, 512 * MIB),
]

# (preset, request bytes, memory a kvmalloc'd vmalloc area maps)
VMALLOC = [
    ("x86_64", 4097, 8192), ("x86_64", 70000, 73728), ("x86_64", 2 * MIB + 1, 2 * MIB + 4096),
    ("arm64-4k", 4097, 8192), ("arm64-4k", 65535, 65536), ("arm64-4k", 65536, 65536),
    ("arm64-4k", 70000, 131072), ("arm64-4k", 2 * MIB, 2 * MIB), ("arm64-4k", 2 * MIB + 1, 4 * MIB),
    ("arm64-4k-nohuge", 70000, 73728), ("arm64-4k-nohuge", 2 * MIB + 1, 2 * MIB + 4096),
    ("arm64-16k", 100000, 114688), ("arm64-16k", 2 * MIB + 1, 4 * MIB), ("arm64-16k", 32 * MIB + 1, 64 * MIB),
    ("arm64-16k-nohuge", 2 * MIB + 1, 2 * MIB + 16384),
    ("arm64-64k", 100000, 131072), ("arm64-64k", 2 * MIB + 1, 4 * MIB), ("arm64-64k", 512 * MIB + 1, 1024 * MIB),
    ("arm64-64k-nohuge", 2 * MIB + 1, 2 * MIB + 65536),
]


def _z3_value(term: z3.ExprRef) -> int:
    value = z3.simplify(term)
    assert z3.is_bv_value(value)
    return int(value.as_long())


@pytest.mark.parametrize("name", LIMITS)
def test_each_preset_has_the_kernels_limits(name: str) -> None:
    page, order, kmalloc_max, first_classes = LIMITS[name]
    plat = preset_named(name).platform(1)
    assert (plat.page_size, plat.max_page_order, plat.kmalloc_max_size) == (page, order, kmalloc_max)
    assert plat.size_classes()[: len(first_classes)] == first_classes
    assert plat.size_classes()[-1] == 2 * page  # KMALLOC_MAX_CACHE_SIZE


def test_the_presets_are_the_table_and_cite_their_sources() -> None:
    assert set(PRESETS) == set(LIMITS)
    source = (Path(__file__).resolve().parent.parent / "models" / "machine.py").read_text()
    for cited in ("ARCH_FORCE_MAX_ORDER", "HAVE_ARCH_HUGE_VMALLOC", "CONT_PTE", "PMD_SHIFT", "ARCH_DMA_MINALIGN",
                  "__kmalloc_minalign", "arch/arm64/Kconfig", "include/linux/mmzone.h", "v7.1"):
        assert cited in source, cited


@pytest.mark.parametrize(("name", "nbytes", "ksize"), KMALLOC)
def test_kmalloc_physical_in_both_encodings(name: str, nbytes: int, ksize: int) -> None:
    plat = preset_named(name).platform(1)
    assert kv.kmalloc_physical(plat, nbytes) == ksize
    assert _z3_value(kvz.kmalloc_physical(plat, kvz.u64(nbytes))) == ksize


@pytest.mark.parametrize(("name", "nbytes", "mapped"), VMALLOC)
def test_vmalloc_physical_in_both_encodings(name: str, nbytes: int, mapped: int) -> None:
    plat = preset_named(name).platform(1)
    assert kv.vmalloc_physical(plat, nbytes) == mapped
    assert _z3_value(kvz.vmalloc_physical(plat, kvz.u64(nbytes))) == mapped


@pytest.mark.parametrize("name", LIMITS)
def test_kmalloc_serves_exactly_up_to_kmalloc_max_size_in_both_encodings(name: str) -> None:
    kmalloc_max = LIMITS[name][2]
    plat = preset_named(name).platform(1)
    for nbytes, served in ((kmalloc_max, True), (kmalloc_max + 1, False)):
        assert (kv.kmalloc(plat, nbytes, Outcome(), Recorder(1)) is not None) is served
        rec = kvz.SymRecorder(kvz.u64(1))
        ok, _ = kvz.kmalloc(plat, z3.BoolVal(True), kvz.u64(nbytes), kvz.SymOutcome(z3.BoolVal(True), z3.BoolVal(True)),
                            rec)
        assert z3.is_true(z3.simplify(ok)) is served


def test_the_page_size_shorthand_is_the_default_preset() -> None:
    assert PAGE_SIZE_PRESETS == {4096: "x86_64", 16384: "arm64-16k", 65536: "arm64-64k"}
    for page, name in PAGE_SIZE_PRESETS.items():
        assert Platform(8, page) == preset_named(name).platform(8)


def test_a_model_on_a_platform_is_named_for_it_and_runs_with_its_page() -> None:
    model = model_named("kvvec-v6/u8@arm64-16k")
    assert model.platform == "arm64-16k" and model.page_size(4096) == 16384
    assert model.machine(1, 16384).max_page_order == 11
    with pytest.raises(ValueError, match="16384-byte pages, not 4096"):
        model.machine(1, 4096)
    with pytest.raises(KeyError):
        model_named("kvvec-v6/u8@sparc")
    # Binder's models bind too (their Z3 checks run on the preset's allocator).
    assert model_named("binder/v6@arm64-4k").platform == "arm64-4k"


def test_verify_list_shows_the_platforms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "platforms (for --platform):" in out
    for name in PRESETS:
        assert f"  {name} " in out
    assert ("shrink.vmalloc-replacement-frees" in out and "[expected VIOLATED on sized T with --platform arm64-4k,"
            " arm64-16k, arm64-64k, else PROVED]" in out)


def test_an_unknown_platform_is_one_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "all", "--platform", "sparc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--platform: invalid choice: 'sparc'" in err[0]


def test_a_page_size_contradicting_the_platform_is_one_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "zst-noop", "--platform", "arm64-16k", "--page-size", "4096"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["verify: error: --page-size 4096 contradicts --platform arm64-16k (16384-byte pages)"]


def test_run_on_a_platform_checks_the_kvvec_models_bound_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "vmalloc-replacement-frees", "--platform", "arm64-4k", "--no-cache",
                 "--counterexamples", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "VIOLATED  shrink.vmalloc-replacement-frees   kvvec-v6/u8@arm64-4k" in out
    assert "vmalloc 65537B (131072B physical)" in out
    assert all("_arm64-4k--" in p.name for p in tmp_path.iterdir())


def test_the_same_check_on_x86_64_is_proved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "vmalloc-replacement-frees", "--platform", "x86_64", "--no-cache", "-q"]) == 0
    assert "4 PROVED" in capsys.readouterr().out


def test_the_config_names_a_platform(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.verify]\nplatform = "arm64-64k"\n')
    assert load(path).platform == "arm64-64k"
    path.write_text('[tool.verify]\nplatform = "arm64"\n')
    with pytest.raises(ConfigError, match="platform = 'arm64' must be one of x86_64, arm64-4k, "):
        load(path)


def test_a_configured_platform_binds_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.verify]\nplatform = "arm64-4k"\n')
    assert main(["run", "vmalloc-replacement-frees", "--config", str(path), "--no-cache", "-q",
                 "--counterexamples", str(tmp_path / "cex")]) == 0
    assert "4 VIOLATED" in capsys.readouterr().out


def test_the_16k_shorthand_runs_the_arm64_16k_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "vmalloc-replacement-frees", "--page-size", "16384", "--no-cache", "--counterexamples",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "kvvec-v6/u8@arm64-16k" in out and "4 VIOLATED" in out


@pytest.mark.parametrize("name", LIMITS)
def test_a_smaller_kvmalloc_area_never_maps_more(name: str) -> None:
    """Why huge mappings add no new growth to shrink.physical-never-grows: the rounding is monotone."""
    plat = preset_named(name).platform(1)
    n, m = z3.BitVecs("n m", 64)
    solver = z3.Solver()
    solver.add(z3.ULT(n, m), z3.ULE(m, (1 << 31) - 1))  # kvmalloc's vmalloc serves up to INT_MAX
    solver.add(z3.UGT(kvz.vmalloc_physical(plat, n), kvz.vmalloc_physical(plat, m)))
    assert solver.check() == z3.unsat


def test_vrealloc_grows_into_small_pages_and_kvmalloc_maps_huge() -> None:
    """mm/vmalloc.c: vrealloc's new area has no VM_ALLOW_HUGE_VMAP; kvmalloc's has."""
    plat = preset_named("arm64-4k").platform(1)
    rec = Recorder(1)
    old = kv.kvmalloc(plat, 8192, Outcome(kmalloc_ok=False), rec)
    assert old is not None and old.physical == 8192
    grown = kv.vrealloc(plat, old, 69633, Outcome(), Recorder(2))
    assert grown is not None and grown.physical == 73728  # 18 small pages
    fresh = kv.kvmalloc(plat, 69633, Outcome(kmalloc_ok=False), Recorder(3))
    assert fresh is not None and fresh.physical == 131072  # two 64 KiB contiguous-PTE blocks
    assert not kv.allocation_violations(plat, grown) and not kv.allocation_violations(plat, fresh)
    g = z3.BoolVal(True)
    ok = kvz.SymOutcome(z3.BoolVal(True), z3.BoolVal(True))
    sym_old = kvz.SymAlloc(g, kvz.u64(1), g, kvz.u64(8192), kvz.u64(8192))
    _, sym_grown = kvz.vrealloc(plat, g, sym_old, kvz.u64(69633), ok, kvz.SymRecorder(kvz.u64(2)))
    assert _z3_value(sym_grown.physical) == 73728
