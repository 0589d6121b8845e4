"""`[tool.verify]` in pyproject.toml: the defaults of `verify run`, each overridable by its flag.

Every key is checked before any proof starts: an unknown key or a value of the
wrong type or range is a ConfigError, which the command line reports in one line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from models.catalogue import MODELS, policy_model
from models.faults import FAULTS
from models.machine import PAGE_SIZES, PRESETS
from properties.binder import BMC_DEPTH, EXPLORER_PAGE_SIZES, INSTANCE
from verify.search.confirm import DEFAULT as DEFAULT_SECOND_SOLVER
from verify.search.confirm import SOLVERS as SECOND_SOLVERS
from verify.search.explorer import MAX_CAPACITY
from verify.search.solver import timeout_problem


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    """What a run uses when no flag says otherwise."""

    page_size: int = 4096
    timeout: float = 60.0  # seconds per solver query
    bmc_depth: int = BMC_DEPTH
    jobs: int | None = None  # None: the number of cores
    models: tuple[str, ...] = ()  # model names to check; empty: every model
    faults: tuple[str, ...] = ()
    counterexamples: str = "counterexamples"
    cache_dir: str = ".verify-cache"
    confirm: bool = False  # the solvers: the portfolio alone, or every proof re-checked by another solver
    second_solver: str = DEFAULT_SECOND_SOLVER  # which one re-checks, with confirm
    source: str | None = None  # a kernel tree whose source every run also checks for conformance (verify source)
    platform: str | None = None  # a preset of models/machine.py; None: the page size's default preset
    max_capacity: int = INSTANCE.max_capacity  # the explicit-state properties' capacity bound
    explorer_page_size: int = INSTANCE.page_size  # and their PAGE_SIZE
    # [tool.verify.policies]: binder shrink policies the project defines (NAME = "TRIGGER => TARGET"), each
    # one more binder model (`binder/NAME`) in every run.
    policies: tuple[tuple[str, str], ...] = ()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_path(v: Any) -> bool:
    return isinstance(v, str) and v != "" and "\0" not in v  # the system cannot take a NUL in a path


def _names(known: Any) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return "must be a list of strings"
        unknown = [x for x in v if x not in known]
        return f"names unknown {unknown[0]!r}; `verify list` shows them" if unknown else None

    return check


def _policies(v: Any) -> str | None:
    if not isinstance(v, dict):
        return 'must be a table of NAME = "TRIGGER => TARGET"'
    for name, rule in v.items():
        if not isinstance(rule, str):
            return f'.{name} = {_shown(rule)} must be a string, "TRIGGER => TARGET"'
        try:
            policy_model(name, rule)
        except ValueError as e:  # a PolicyError names the column
            return f".{name} = {_shown(rule)}: {e}"
    return None


# Each validator returns None for a good value, else what is wrong with it.
VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "page-size": lambda v: None
    if _is_int(v) and v in PAGE_SIZES
    else f"must be one of {', '.join(map(str, PAGE_SIZES))}",
    "timeout": lambda v: timeout_problem(v) if _is_int(v) or isinstance(v, float) else "must be a number of seconds",
    "bmc-depth": lambda v: None if _is_int(v) and 1 <= v <= 64 else "must be an integer in 1..64",
    "max-capacity": lambda v: None
    if _is_int(v) and 1 <= v <= MAX_CAPACITY
    else f"must be an integer in 1..{MAX_CAPACITY}",
    "explorer-page-size": lambda v: None
    if _is_int(v) and v in EXPLORER_PAGE_SIZES
    else f"must be one of {', '.join(map(str, EXPLORER_PAGE_SIZES))}",
    "jobs": lambda v: None if _is_int(v) and v >= 1 else "must be an integer, at least 1",
    "models": _names({m.name for m in MODELS}),
    "faults": _names(FAULTS.keys()),
    "counterexamples": lambda v: None if _is_path(v) else "must be a directory name",
    "cache-dir": lambda v: None if _is_path(v) else "must be a directory name",
    "confirm": lambda v: None if isinstance(v, bool) else "must be true or false",
    "second-solver": lambda v: None
    if isinstance(v, str) and v in SECOND_SOLVERS
    else f"must be one of {', '.join(SECOND_SOLVERS)}",
    "source": lambda v: None if _is_path(v) else "must be a directory name (a kernel tree)",
    "platform": lambda v: None if isinstance(v, str) and v in PRESETS else f"must be one of {', '.join(PRESETS)}",
    "policies": _policies,
}
assert set(VALIDATORS) == {f.name.replace("_", "-") for f in fields(Settings)}


def _shown(value: Any) -> str:
    """A value as an error line quotes it: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse(table: dict[str, Any], origin: str) -> Settings:
    """Settings from a `[tool.verify]` table; `origin` names it in errors."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in VALIDATORS:
            raise ConfigError(f"{origin}: unknown key {key!r}; known keys: {', '.join(VALIDATORS)}")
        problem = VALIDATORS[key](value)
        if problem is not None and problem.startswith("."):  # about one entry of a table: name it alone
            raise ConfigError(f"{origin}: {key}{problem}")
        if problem is not None:
            raise ConfigError(f"{origin}: {key} = {_shown(value)} {problem}")
        if isinstance(value, dict):  # policies: its pairs, in the table's order
            value = list(value.items())
        values[key.replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    return Settings(**values)


def load(path: Path, required: bool = False) -> Settings:
    """The settings of `path`'s [tool.verify]; the defaults when the table is absent.

    A missing file gives the defaults too, unless it is `required` (named by
    --config): then it, or a path that is not a regular file, is an error.
    """
    if not path.is_file():
        if not required:
            return Settings()
        if not path.exists():
            raise ConfigError(f"{path}: no such file")
        raise ConfigError(f"{path}: {'a directory' if path.is_dir() else 'not a regular file'}, not a pyproject.toml")
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool = {tool!r} must be a table ([tool])")
    table = tool.get("verify")
    if table is None:
        return Settings()
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.verify] must be a table")
    return parse(table, f"{path} [tool.verify]")
