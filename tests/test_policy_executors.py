"""The sweep's executors: the local process pool and a Dask cluster give the same table, through one proof cache.

The Dask test starts its own local cluster (two worker processes); it is skipped only where the optional
extra `distributed` is not installed (`pip install -e '.[distributed]'`; CI installs it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from models.catalogue import policy_model
from properties.binder import PROPERTIES
from verify.check.executors import LocalExecutor
from verify.check.policy_family import Family
from verify.check.runner import RunOptions
from verify.check.sweep import Candidate, PolicyRow, sweep

# One group for pytest-xdist: the filled cache below is computed once.
pytestmark = pytest.mark.xdist_group("test_policy_executors")

RULE = "len < cap/8 => cap/2"
HAS_DASK = importlib.util.find_spec("distributed") is not None


def _options(cache: Path | None) -> RunOptions:
    # BMC 4 operations deep: the cells' verdicts are the engine's either way, and the test stays short.
    return RunOptions(page_size=4096, timeout_ms=60_000, jobs=2, bmc_depth=4, cache_dir=cache)


def _candidates() -> list[Candidate]:
    return [Candidate("eighth-half", policy_model("eighth-half", RULE), "--policy", RULE)]


def _family() -> list[Candidate]:
    models = Family(divisors=(6,), targets=("len*2", "max(len*2, 8)")).models()
    return [Candidate(m.policy or "", m, "family", m.binder_policy().rule) for m in models]


def table(rows: list[PolicyRow]) -> list[tuple[Any, ...]]:
    """What the report shows of each row: everything but the seconds and whether the cache answered."""
    return [(r.name, r.rule, r.metrics, sorted((p, c.verdict, c.scope, c.detail) for p, c in r.cells.items()))
            for r in rows]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PolicyRow]]:
    """A sweep of every property on one policy in the local pool, from an empty cache."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, sweep(_candidates(), _options(cache), LocalExecutor(2), "all")


def test_the_sweep_runs_every_property_and_caches_its_verdicts(filled: tuple[Path, list[PolicyRow]]) -> None:
    cache, (row,) = filled
    model = _candidates()[0].model
    assert set(row.cells) == {p.id for p in PROPERTIES if p.applies(model)}
    assert row.cells["binder.waste-bound"].verdict == "VIOLATED"  # one halving leaves capacity 16 for 0
    assert row.cells["binder.no-immediate-regrow"].verdict == "PROVED"
    assert row.cells["binder.keeps-others"].scope.startswith("bitwuzla: one operation from every state")
    assert not any(c.cached for c in row.cells.values())
    (again,) = sweep(_candidates(), _options(cache), LocalExecutor(1), "all")
    assert all(c.cached for c in again.cells.values())
    assert table([again]) == table([row])


@pytest.mark.skipif(not HAS_DASK, reason="the optional extra `distributed` is not installed (pip install -e "
                    "'.[distributed]')")
def test_a_dask_cluster_gives_the_local_table(filled: tuple[Path, list[PolicyRow]], tmp_path: Path) -> None:
    from distributed import LocalCluster

    from verify.check.executors import DaskExecutor

    cache, local = filled
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        try:
            # The proof cache the local pool filled answers the cluster's workers, as it answers `verify run`.
            remote = sweep(_candidates(), _options(cache), executor, "all")
            assert all(c.cached for r in remote for c in r.cells.values())
            assert table(remote) == table(local)
            # Without a cache: the same cells computed afresh on both.
            fresh = sweep(_family(), _options(None), executor, "none")
        finally:
            executor.close()
    assert table(fresh) == table(sweep(_family(), _options(None), LocalExecutor(2), "none"))
    assert not any(c.cached for r in fresh for c in r.cells.values())
