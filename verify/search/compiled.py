"""How the explorer's inner loops are compiled: numba in nopython mode, the machine code cached on disk.

`cache=True` keeps the machine code in __pycache__ (or numba's user cache
directory where that is read-only), so only the first run after a change
compiles: https://numba.readthedocs.io/en/stable/user/jit.html#cache . numba
keys that cache by the file of the function compiled, so functions compiled
into one another share a file (packed_kernel.py). A module that imports this
one is imported only where it is needed: numba takes half a second to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """numba's nopython compilation, machine code cached on disk; the function keeps its signature for mypy."""
    return cast(F, numba.njit(cache=True)(fn))


def inlined(fn: F) -> F:
    """A function compiled into its caller: a call of its own would pass (and reference-count) its array
    arguments each time, which costs more than a step of the explorer."""
    return cast(F, numba.njit(cache=True, inline="always")(fn))
