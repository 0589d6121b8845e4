"""The pytest plugin, run as a user would: `pytest --verify` in a project, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

U8_ONLY = '[tool.verify]\nmodels = ["kvvec-v6/u8"]\n'


def pytest_in(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_a_check_as_declared_passes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(U8_ONLY)
    done = pytest_in(tmp_path, "--verify", "--verify-pattern", "shrink.never-grows", "-v")
    assert done.returncode == 0, done.stdout
    assert "verify::shrink::never-grows[kvvec-v6/u8] PASSED" in done.stdout and "1 passed" in done.stdout


def test_an_unexpected_verdict_fails_with_the_trace_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(U8_ONLY)
    args = ["--verify", "--verify-pattern", "shrink.elements-kept", "--verify-fault", "copy-one-short"]
    done = pytest_in(tmp_path, *args)
    assert done.returncode == 1, done.stdout
    assert "collected 1 item" in done.stdout and "1 failed" in done.stdout
    assert "VIOLATED  shrink.elements-kept" in done.stdout and "UNEXPECTED (declared PROVED)" in done.stdout
    assert "step  action" in done.stdout and "fails at step 1: len and every element are preserved" in done.stdout
    assert list((tmp_path / "counterexamples").glob("shrink.elements-kept--*.itf.json"))


def test_nothing_is_collected_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(U8_ONLY)
    done = pytest_in(tmp_path)
    assert done.returncode == 5 and "no tests ran" in done.stdout  # pytest's "no tests collected"


def test_the_ini_option_collects_without_the_flag(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(U8_ONLY + "\n[tool.pytest.ini_options]\nverify_proofs = true\n")
    done = pytest_in(tmp_path, "--verify-pattern", "shrink.never-grows")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout


def test_a_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.verify]\npage-size = 5000\n")
    done = pytest_in(tmp_path, "--verify")
    assert done.returncode == 4 and "page-size = 5000 must be one of 4096, 16384, 65536" in done.stderr


def test_a_configured_platform_binds_the_collected_models(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(U8_ONLY + 'platform = "arm64-4k"\n')
    done = pytest_in(tmp_path, "--verify", "--verify-pattern", "shrink.vmalloc-replacement-frees", "-v")
    assert done.returncode == 0, done.stdout
    assert "verify::shrink::vmalloc-replacement-frees[kvvec-v6/u8@arm64-4k] PASSED" in done.stdout


SOURCE = Path(__file__).parent / "data" / "source"


def test_source_checks_the_properties_on_the_kernel_functions(tmp_path: Path) -> None:
    """`--source` as `verify run --source`: v4's deep copy fails the property v6 proves, on the kernel's code."""
    (tmp_path / "pyproject.toml").write_text("[tool.verify]\n")
    args = ["--verify", "--verify-pattern", "shrink.kmalloc-one-realloc", "-v"]
    done = pytest_in(tmp_path, *args, "--source", str(SOURCE / "kvec_v4.rs"))
    assert done.returncode == 1 and "4 failed" in done.stdout, done.stdout
    assert "verify::shrink::kmalloc-one-realloc[kvvec-src/u8] FAILED" in done.stdout
    assert "UNEXPECTED (declared PROVED)" in done.stdout
    assert f"the violation reproduces on the kernel source {SOURCE / 'kvec_v4.rs'}" in done.stdout


def test_a_bad_source_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.verify]\n")
    done = pytest_in(tmp_path, "--verify", "--source", str(tmp_path / "nonexistent"))
    assert done.returncode == 4 and "--source" in done.stderr and "no such file or directory" in done.stderr
    done = pytest_in(tmp_path, "--verify", "--source", str(SOURCE / "kvec_loop.rs"))
    assert done.returncode == 4 and "unsupported while loop" in done.stderr


def test_configured_source_adds_the_conformance_item(tmp_path: Path) -> None:
    """[tool.verify] source, as it joins `verify run`: one more item, the tree's `verify source`."""
    kvec = tmp_path / "linux" / "rust" / "kernel" / "alloc" / "kvec.rs"
    kvec.parent.mkdir(parents=True)
    kvec.write_text((SOURCE / "kvec_reserve_exact.rs").read_text())
    (tmp_path / "pyproject.toml").write_text(U8_ONLY + 'source = "linux"\n')
    done = pytest_in(tmp_path, "--verify", "--verify-pattern", "shrink.never-grows", "-v")
    assert done.returncode == 1, done.stdout
    assert "verify::shrink::never-grows[kvvec-v6/u8] PASSED" in done.stdout
    assert "verify::kernel-source[linux] FAILED" in done.stdout and "VIOLATED  reserve" in done.stdout
