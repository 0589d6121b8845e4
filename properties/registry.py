"""Every property `verify` checks, in a stable order."""

from __future__ import annotations

from models.catalogue import ModelSpec
from properties import binder, kunit, shrink
from properties.base import Property, Scenario
from properties.binder import SequenceProperty


def applicable(prop: Property | SequenceProperty, model: ModelSpec) -> bool:
    """Sequence properties check binder models; the others check KVVec models.

    The KUnit scenarios are the merged tests of v6's shrink_to: they check the merged code only.
    """
    if isinstance(prop, Scenario) and model.code.generic:
        return False
    return prop.applies(model) and isinstance(prop, SequenceProperty) == (model.policy is not None)


def all_properties(page_size: int) -> tuple[Property | SequenceProperty, ...]:
    """The catalogue; the KUnit tests and scenarios are sized in pages, so they depend on PAGE_SIZE."""
    return (*shrink.PROPERTIES, *kunit.test_programs(page_size), *kunit.scenarios(page_size), *binder.PROPERTIES)
