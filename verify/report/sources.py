"""The kernel source files a run's models were read from (`verify run --source`): every report names them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from models.catalogue import ModelSpec


@dataclass(frozen=True)
class KernelSource:
    """One file, the SHA-256 of the content the models were read from, and the models read from it."""

    path: str
    sha256: str
    models: tuple[str, ...]


def kernel_sources(models: Iterable[ModelSpec]) -> list[KernelSource]:
    """The files behind the source models among `models`, in path order (none for the catalogue's models)."""
    found: dict[tuple[str, str], list[str]] = {}
    for m in models:
        if m.source is not None and m.source_sha256 is not None:
            names = found.setdefault((m.source, m.source_sha256), [])
            if m.name not in names:
                names.append(m.name)
    return [KernelSource(path, sha, tuple(names)) for (path, sha), names in sorted(found.items())]


def describe(sources: Sequence[KernelSource]) -> list[str]:
    """One line per file, as the terminal and the text report show them."""
    return [f"kernel source: {s.path} (SHA-256 {s.sha256}): {', '.join(s.models)}" for s in sources]
