"""Every property `verify` checks, in a stable order."""

from __future__ import annotations

from properties import kunit, shrink
from properties.base import Property


def all_properties(page_size: int) -> tuple[Property, ...]:
    """The catalogue; the KUnit scenarios are sized in pages, so they depend on PAGE_SIZE."""
    return (*shrink.PROPERTIES, *kunit.scenarios(page_size))
