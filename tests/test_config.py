"""[tool.verify] in pyproject.toml: defaults for `verify run`, flags over them, one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from verify.cli import main
from verify.config import ConfigError, Settings, load


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    return path


def test_missing_file_or_table_gives_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path / "absent.toml") == Settings()
    assert load(write(tmp_path, "[project]\nname = 'x'\n")) == Settings()


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[tool.verify]\npage-size = 16384\ntimeout = 5\nbmc-depth = 3\njobs = 1\n"
        'models = ["kvvec-v6/u8"]\nfaults = ["always-noop"]\ncounterexamples = "cex"\ncache-dir = "cache"\n'
        "confirm = true\n"
        'second-solver = "cvc5"\n'
        "max-capacity = 128\nexplorer-page-size = 4096\n",
    )
    expected = Settings(16384, 5.0, 3, 1, ("kvvec-v6/u8",), ("always-noop",), "cex", "cache", True, "cvc5")
    assert load(path) == dataclasses.replace(expected, max_capacity=128, explorer_page_size=4096)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pagesize = 4096", "unknown key 'pagesize'; known keys: page-size, timeout"),
        ("page-size = 5000", "page-size = 5000 must be one of 4096, 16384, 65536"),
        ('page-size = "4096"', "page-size = '4096' must be one of"),
        ("timeout = 0", "timeout = 0 must be between 0.001 and 86400 seconds (one day)"),
        ("timeout = true", "timeout = True must be a number of seconds"),
        ("timeout = 1e-4", "timeout = 0.0001 must be between 0.001 and 86400 seconds"),
        ("timeout = 4294968", "timeout = 4294968 must be between 0.001 and 86400 seconds"),
        ("timeout = inf", "timeout = inf must be between 0.001 and 86400 seconds"),
        ("timeout = nan", "timeout = nan must be between"),
        ('timeout = "60"', "timeout = '60' must be a number of seconds"),
        ("jobs = 1.5", "jobs = 1.5 must be an integer, at least 1"),
        ('models = [1, "kvvec-v6/u8"]', "must be a list of strings"),
        ("faults = {}", "faults = {} must be a list of strings"),
        ("counterexamples = []", "counterexamples = [] must be a directory name"),
        ('cache-dir = ""', "cache-dir = '' must be a directory name"),
        ('cache-dir = "a\\u0000b"', "cache-dir = 'a\\x00b' must be a directory name"),
        ("confirm = 1", "confirm = 1 must be true or false"),
        ('second-solver = ["cvc5"]', "second-solver = ['cvc5'] must be one of bitwuzla, cvc5"),
        ("second-solver = {}", "second-solver = {} must be one of bitwuzla, cvc5"),
        # A long value is quoted cut short, keeping the error one readable line.
        (
            "models = [" + ", ".join(['"kvvec-v6/u8"'] * 20) + ", 5]",
            "models = ['kvvec-v6/u8', 'kvvec-v6/u8', 'kvvec-v6/u8', 'kvvec-v6/u... must be",
        ),
        ("bmc-depth = 65", "bmc-depth = 65 must be an integer in 1..64"),
        ("max-capacity = 0", "max-capacity = 0 must be an integer in 1..65536"),
        ('max-capacity = "40"', "max-capacity = '40' must be an integer in 1..65536"),
        ("explorer-page-size = 128", "explorer-page-size = 128 must be one of 64, 4096, 16384, 65536"),
        ("jobs = 0", "jobs = 0 must be an integer, at least 1"),
        ('models = ["kvvec-v6/u7"]', "names unknown 'kvvec-v6/u7'"),
        ('models = "kvvec-v6/u8"', "must be a list of strings"),
        ('faults = ["nope"]', "names unknown 'nope'"),
        ("page-size = [", "not valid TOML"),
        ('confirm = "yes"', "confirm = 'yes' must be true or false"),
        ('second-solver = "yices"', "second-solver = 'yices' must be one of bitwuzla, cvc5"),
    ],
)
def test_bad_config_is_one_line_and_exit_two(
    body: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[tool.verify]\n" + body + "\n")
    with pytest.raises(ConfigError, match="."):
        load(path)
    code = main(["run", "shrink.zst-noop", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"verify: error: {path}") and message in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tool = 5", "tool = 5 must be a table ([tool])"),
        ('tool = ["verify"]', "tool = ['verify'] must be a table"),
        ("[tool]\nverify = 5", "[tool.verify] must be a table"),
        ("[[tool.verify]]\njobs = 1", "[tool.verify] must be a table"),
    ],
)
def test_a_tool_or_tool_verify_that_is_not_a_table_is_one_line_and_exit_two(
    body: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, body + "\n")
    code = main(["run", "shrink.zst-noop", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"verify: error: {path}") and message in err


def test_a_config_named_by_the_flag_must_be_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absent.toml: no such file"):
        load(tmp_path / "absent.toml", required=True)
    with pytest.raises(ConfigError, match="a directory, not a pyproject.toml"):
        load(tmp_path, required=True)
    assert load(tmp_path, required=False) == Settings()  # ./pyproject.toml, when absent, is no error


def test_config_selects_models_and_flags_override_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[tool.verify]\nmodels = ["kvvec-v6/u8"]\npage-size = 65536\nbmc-depth = 2\n')
    assert main(["run", "shrink.never-grows", "--config", str(path), "--format", "json", "--page-size", "4096"]) == 0
    out = capsys.readouterr().out
    assert '"model": "kvvec-v6/u8"' in out and out.count('"model":') == 1
    assert '"page_size": 4096' in out and '"bmc_depth": 2' in out


def test_config_fault_makes_the_gate_fail_and_the_flag_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[tool.verify]\nmodels = ["kvvec-v6/u8"]\nfaults = ["copy-one-short"]\n')
    argv = ["run", "shrink.elements-kept", "--config", str(path), "--counterexamples", str(tmp_path / "cex")]
    assert main(argv) == 1
    assert "kvvec-v6/u8!copy-one-short" in capsys.readouterr().out
    assert main([*argv, "--fault", "always-noop"]) == 0
    assert "kvvec-v6/u8!always-noop" in capsys.readouterr().out


def test_config_turns_on_the_second_solver_and_the_flag_turns_it_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[tool.verify]\nmodels = ["kvvec-v6/u8"]\nconfirm = true\n')
    argv = ["run", "shrink.never-grows", "--config", str(path), "--no-cache", "--counterexamples", str(tmp_path)]
    assert main(argv) == 0
    assert "--confirm: every UNSAT answer was re-checked by Bitwuzla" in capsys.readouterr().out
    assert main([*argv, "--second-solver", "cvc5"]) == 0
    assert "--confirm: every UNSAT answer was re-checked by cvc5" in capsys.readouterr().out
    assert main([*argv, "--no-confirm"]) == 0
    assert "re-checked" not in capsys.readouterr().out


def test_the_projects_own_config_is_valid() -> None:
    settings = load(Path(__file__).parent.parent / "pyproject.toml")
    assert settings.page_size == 4096 and settings.timeout == 60.0


def test_the_explored_instance_comes_from_config_and_the_flag_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[tool.verify]\nmax-capacity = 16\n")
    argv = ["run", "binder.no-thrash", "--config", str(path), "--format", "json", "--no-cache"]
    assert main([*argv, "--counterexamples", str(tmp_path / "cex")]) == 0
    out = capsys.readouterr().out
    # v6 at capacity 16: 125 states (tests/test_packed.py holds them to the reference explorer).
    assert "explicit-state: 125 states, 259 edges, PAGE_SIZE 64 B, capacity <= 16" in out
    assert '"max_capacity": 16' in out and '"explorer_page_size": 64' in out
    assert main([*argv, "--counterexamples", str(tmp_path / "cex"), "--max-capacity", "20"]) == 0
    assert "capacity <= 20" in capsys.readouterr().out
