"""A pytest plugin: every (property, model) check as a test item, so plain `pytest` gates on the proofs.

It collects nothing unless asked, so a project's own test run stays as fast as
it was: `pytest --verify` (or `verify_proofs = true` in the pytest ini
options) adds the checks to whatever else is collected. `--verify-pattern`
selects checks as `verify run PATTERN` does, `--verify-fault` seeds a fault, and
`--source PATH` checks the properties on the kernel's own functions read from a
tree, a kvec.rs or a context.rs, as `verify run --source` does. Defaults come from
[tool.verify] in the root directory's pyproject.toml; its `source` (a kernel tree)
adds one more item, the tree's conformance to the models (`verify source`), as it
joins `verify run`.

A check passes when its verdict is as declared (an expected violation too);
an unexpected verdict or an UNKNOWN fails, with the row `verify run` prints and
the counterexample's step table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from models.catalogue import ModelSpec
    from properties.base import Property
    from properties.binder import SequenceProperty
    from verify.config import Settings
    from verify.report.gate import Checked


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verify", "proofs of the verify model checker")
    group.addoption("--verify", action="store_true", help="collect every (property, model) check as a test")
    group.addoption(
        "--verify-pattern", default="all", metavar="PATTERN", help="only checks matching PATTERN, as `verify run`"
    )
    group.addoption(
        "--verify-fault", action="append", default=[], metavar="NAME", help="seed a fault into shrink_to; repeatable"
    )
    group.addoption(
        "--source", dest="verify_source", default=None, metavar="PATH", type=Path,
        help="check the properties on the kernel's functions read from PATH (a tree, kvec.rs or context.rs)",
    )
    parser.addini("verify_proofs", "collect the verify checks without --verify", type="bool", default=False)


class ProofFailed(Exception):
    def __init__(self, checked: Checked) -> None:
        super().__init__(checked.result.prop.id)
        self.checked = checked


class ProofItem(pytest.Item):
    def __init__(
        self, *, prop: Property | SequenceProperty, model: ModelSpec, settings: Settings, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.prop = prop
        self.model = model
        self.settings = settings

    def runtest(self) -> None:
        from verify.check.cache import ProofCache
        from verify.check.engine import check
        from verify.report.gate import Checked
        from verify.search.explorer import Instance
        from verify.search.solver import Solving
        from verify.traces.trace import save

        s = self.settings
        solving = Solving(int(s.timeout * 1000))
        page_size = self.model.page_size(s.page_size)
        explorer = Instance(s.explorer_page_size, s.max_capacity)
        result = check(
            self.prop, self.model, page_size, solving, s.bmc_depth, ProofCache(Path(s.cache_dir)), explorer=explorer
        )
        saved = None if result.counterexample is None else save(result.counterexample, Path(s.counterexamples))[0]
        checked = Checked(result, saved)
        self.user_properties.append(("verdict", result.verdict.value))
        if checked.outcome != "expected":
            raise ProofFailed(checked)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, ProofFailed):
            return str(super().repr_failure(excinfo, style))
        from verify.report.text import row
        from verify.source.steps import ON_SOURCE
        from verify.traces.replay import replay
        from verify.traces.show import render_table
        from verify.traces.trace import load

        checked = excinfo.value.checked
        text = row(checked.result, checked.trace)
        if checked.trace is not None:
            loaded = load(checked.trace)
            text += "\n\n" + render_table(loaded, replay(loaded, ON_SOURCE), color=False)
        return text

    def reportinfo(self) -> tuple[Path, int | None, str]:
        from verify.report.sarif import SOURCE_ROOT, property_source

        source = property_source(self.prop.id)
        if source is None:
            return self.path, None, self.name
        return SOURCE_ROOT / source[0], source[1] - 1, self.name


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (config.getoption("verify") or config.getini("verify_proofs")):
        return
    from models.catalogue import MODELS
    from models.faults import FAULTS
    from models.machine import PAGE_SIZE_PRESETS, PRESETS
    from properties.registry import all_properties
    from verify.cli import UsageError, selected, source_models
    from verify.config import ConfigError
    from verify.config import load as load_config

    try:
        settings = load_config(config.rootpath / "pyproject.toml")
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    faults = frozenset(settings.faults) | frozenset(config.getoption("verify_fault"))
    unknown = sorted(faults - FAULTS.keys())
    if unknown:
        raise pytest.UsageError(f"unknown fault {unknown[0]!r}; `verify list` shows the faults")
    models = [m for m in MODELS if not settings.models or m.name in settings.models]
    # As `verify run`: a platform binds the kvvec models; 16 and 64 KiB pages stand for arm64's presets.
    platform = settings.platform or (PAGE_SIZE_PRESETS[settings.page_size] if settings.page_size != 4096 else None)
    if platform is not None:
        models = [m.with_platform(platform) if m.policy is None else m for m in models]
    source = config.getoption("verify_source")
    if source is not None:  # as `verify run --source`: the models read from the kernel's files instead
        try:
            models = source_models(source, dataclasses.replace(settings, faults=tuple(sorted(faults))))
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None
    elif faults:
        models = [m.with_faults(faults) for m in models]
    pattern = config.getoption("verify_pattern")
    pairs = selected(pattern, all_properties(PRESETS[platform].page_size if platform else settings.page_size), models)
    if not pairs:
        raise pytest.UsageError(f"no property or model matches {pattern!r}; `verify list` shows them")
    proofs = ProofCollector.from_parent(session, name="verify", nodeid="verify", path=config.rootpath)
    made: list[pytest.Item] = [
        ProofItem.from_parent(proofs, name=f"{prop.id}[{model.name}]", prop=prop, model=model, settings=settings)
        for prop, model in pairs
    ]
    if settings.source is not None:  # the drift alarm of [tool.verify] source, as `verify run` adds it
        tree = config.rootpath / settings.source
        if not tree.is_dir():
            raise pytest.UsageError(f"[tool.verify] source = {settings.source!r} is not a directory (a kernel tree)")
        made.append(ConformanceItem.from_parent(proofs, name=f"kernel-source[{settings.source}]", tree=tree))
    # Reported as a finished collection, so "collected N items" counts the checks.
    config.hook.pytest_collectreport(report=pytest.CollectReport("verify", "passed", None, list(made)))
    items.extend(made)


class ConformanceFailed(Exception):
    pass


class ConformanceItem(pytest.Item):
    """`verify source TREE`: passes when every function of the tree is PROVED conformant to the models."""

    def __init__(self, *, tree: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tree = tree

    def runtest(self) -> None:
        import contextlib
        import io

        from verify.source import command

        out = io.StringIO()
        with contextlib.redirect_stderr(out):  # an unreadable file's error line joins the verdicts
            code = command.run(self.tree, None, None, out)
        self.user_properties.append(("exit_code", code))
        if code != command.EXIT_CONFORMANT:
            raise ConformanceFailed(out.getvalue())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.tree, None, self.name


class ProofCollector(pytest.Collector):
    """The parent of the proof items, so their ids read `verify::PROPERTY[MODEL]`."""

    def collect(self) -> list[pytest.Item]:
        return []  # the items are made in pytest_collection_modifyitems, with the settings
