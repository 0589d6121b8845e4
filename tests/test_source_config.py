"""[tool.verify] source = PATH: every `verify run` also checks the kernel tree's source against the models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from verify.cli import main
from verify.config import ConfigError, load

DATA = Path(__file__).parent / "data" / "source"


def _tree(root: Path, kvec: str) -> Path:
    path = root / "linux" / "rust" / "kernel" / "alloc" / "kvec.rs"
    path.parent.mkdir(parents=True)
    shutil.copy(DATA / kvec, path)
    return root / "linux"


def _config(root: Path, source: Path) -> Path:
    path = root / "pyproject.toml"
    path.write_text(
        f'[tool.verify]\nmodels = ["kvvec-v6/u8"]\nsource = "{source}"\n'
        f'counterexamples = "{root / "cex"}"\ncache-dir = "{root / "cache"}"\n'
    )
    return path


def test_the_key_is_read_and_checked(tmp_path: Path) -> None:
    assert load(_config(tmp_path, Path("linux"))).source == "linux"
    bad = tmp_path / "bad.toml"
    bad.write_text("[tool.verify]\nsource = 5\n")
    with pytest.raises(ConfigError, match="source = 5 must be a directory name"):
        load(bad)


def test_a_run_adds_a_conformance_row_per_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = _tree(tmp_path, "kvec_v6.rs")
    assert main(["run", "shrink.never-grows", "--config", str(_config(tmp_path, tree))]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("conformance of the kernel source"):].splitlines()
    assert tail[0] == f"conformance of the kernel source in {tree} ([tool.verify] source):"
    assert tail[1].startswith("binder not checked")
    assert tail[2].startswith("PROVED conformant  shrink_to") and tail[3].startswith("PROVED conformant  reserve")


def test_an_unsupported_construct_in_the_source_makes_the_run_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _tree(tmp_path, "kvec_loop.rs")
    assert main(["run", "shrink.never-grows", "--config", str(_config(tmp_path, tree))]) == 2
    assert "UNKNOWN  shrink_to: " in capsys.readouterr().out


def test_a_source_that_is_not_a_tree_is_refused_before_any_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "shrink.never-grows", "--config", str(_config(tmp_path, tmp_path / "absent"))]) == 2
    captured = capsys.readouterr()
    assert "is not a directory (a kernel tree)" in captured.err and len(captured.err.splitlines()) == 1
    assert "shrink.never-grows" not in captured.out
