"""How the suite is shared among pytest-xdist's workers (`pytest -n auto`, as README runs it).

`--dist loadgroup` (pyproject.toml) keeps each group on one worker. A module whose
tests share a costly module-scoped fixture (the kill matrix, the regression traces,
the filled cache...) is one group, so its fixture is computed once, not once per
worker. The kill matrix is the longest piece of work in the suite: it goes first,
and the other worker takes the rest meanwhile.
"""

from __future__ import annotations

import pytest

SHARED_FIXTURE_MODULES = frozenset(
    {"test_mutants.py", "test_regression.py", "test_agreement.py", "test_cache.py", "test_source_interpreter.py"}
)
FIRST = "test_mutants.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    items.sort(key=lambda item: item.path.name != FIRST)  # stable: the rest keep their order
