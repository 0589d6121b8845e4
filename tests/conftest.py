"""How the suite is shared among pytest-xdist's workers (`pytest -n auto`, as README runs it).

A module whose tests share a costly module-scoped fixture (the kill matrix, the regression
traces, the filled cache, a cached solver check...) is one unit of work, kept on one worker, so its fixture is
computed once, not once per worker; every other test is a unit of its own. The kill matrix
is the longest piece of work in the suite: it goes first, and the other worker takes the rest
meanwhile.

The grouping is this scheduler's, not xdist's `xdist_group` marker: xdist 3.8's `loadgroup`
renames each marked item's `_nodeid`, which pytest 9 no longer reads (it builds the id from
`_id`), so under pytest 9 the marker groups nothing and each worker computed the matrix.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_FIXTURE_MODULES = frozenset({
    "test_mutants.py", "test_regression.py", "test_agreement.py", "test_cache.py", "test_source_interpreter.py",
    # A module-level functools.cache of solver checks that several tests read.
    "test_binder_violations.py", "test_kunit.py", "test_source_run.py",
})
FIRST = "test_mutants.py"


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


class SharedFixtureScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduling, where a scope is a shared-fixture module or a single test."""

    def _split_scope(self, nodeid: str) -> str:
        module = _module(nodeid)
        return module if module in SHARED_FIXTURE_MODULES else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> SharedFixtureScheduling:
    return SharedFixtureScheduling(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name != FIRST)  # stable: the rest keep their order
