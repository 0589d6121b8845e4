"""The proof cache: a verdict (and its trace) stored under a key of everything it depends on.

The key covers the solver and its version, the tool's own source (models,
properties, engine), the check's parameters and, for single-call checks, the
exact query text. An entry is bound to its key and its content by a digest
over both, checked on every read: an entry edited, or moved under another
key, is a miss, removed and rebuilt, as is one that cannot be read. A cached
counterexample is loaded and replayed like any trace file (verify.traces.trace,
verify.traces.replay) before it is reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from verify.interrupts import signals_held

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: this file is verify/check/cache.py
SOURCE_DIRS = ("models", "properties", "verify")
ENTRY_FORMAT = "verify-cache/2"


def source_files() -> list[Path]:
    """The code that decides verdicts, as source_digest reads it."""
    return [path for directory in SOURCE_DIRS for path in sorted((ROOT / directory).rglob("*.py"))]


@cache
def source_digest() -> str:
    """A digest of the code that decides verdicts: any change to it invalidates every entry."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def entry_digest(key: str, content: Any) -> str:
    """Binds an entry's content to its key: sha256 over the key and the content's canonical JSON."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{key}\0{text}".encode()).hexdigest()


def make_key(*parts: str) -> str:
    h = hashlib.sha256()
    for part in (source_digest(), *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


class ProofCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The content stored under `key`, if its digest binds it to that key; None is a miss."""
        path = self._path(key)
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError):
            _discard(path)  # corrupt: ignore it, the check runs again
            return None
        bound = (
            isinstance(entry, dict)
            and set(entry) == {"format", "key", "digest", "content"}
            and entry["format"] == ENTRY_FORMAT
            and entry["key"] == key
            and isinstance(entry["content"], dict)
            and entry["digest"] == entry_digest(key, entry["content"])
        )
        if not bound:
            _discard(path)
            return None
        content: dict[str, Any] = entry["content"]
        return content

    def put(self, key: str, content: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"format": ENTRY_FORMAT, "key": key, "digest": entry_digest(key, content), "content": content}
        with signals_held():  # a run stopped meanwhile leaves no temporary file
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(tmp, path)  # the cache is the tool's own: replacing an entry is fine


def _discard(path: Path) -> None:
    """Remove a corrupt entry if it can be removed; one that cannot is simply not used."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
