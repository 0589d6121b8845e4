"""Deliberately broken variants of the models, to show that the properties catch them.

A fault is injected identically into the Python reference model and into the
Z3 encoding, so the counterexample a proof attempt finds replays on the Python
model. The kernel code has none of these faults; the unmutated model is the
one `verify run` checks. Faults come in three layers: shrink_to itself
(models/vec.py, vec_z3.py), the allocators beneath it (allocator.py,
allocator_z3.py) and binder's shrink policy (binder.py, both encodings of a
policy at once).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

SHRINK_FAULTS: dict[str, str] = {
    "target-ignores-len": "target = min_capacity instead of max(len, min_capacity)",
    "target-ignores-min-capacity": "target = len instead of max(len, min_capacity)",
    "target-min": "target = min(len, min_capacity) instead of max",
    "noop-check-dropped": "no early return when capacity <= target: may grow the buffer",
    "copy-one-short": "the vmalloc path copies len - 1 elements",
    "layout-updated-on-err": "the vmalloc path adopts the target layout when alloc fails",
    "page-rule-off-by-one": "the vmalloc path replaces the buffer when current_pages == target_pages",
    "pages-floor": "the page rule counts pages with floor instead of div_ceil",
    "vmalloc-test-inverted": "is_vmalloc_addr's answer is inverted: kmalloc buffers take the page-rule path",
    "kmalloc-deep-copy": "kmalloc buffers also take the alloc + copy + free path (as in v4)",
    "zst-check-dropped": "no early return for a zero-sized T",
    "target-zero-skipped": "the target == 0 branch returns Ok without freeing",
    "free-before-copy": "the old vmalloc buffer is freed before its elements are copied",
    "old-buffer-leaked": "the old vmalloc buffer is never freed",
    "free-with-new-layout": "the old vmalloc buffer is freed with the new layout",
    "target-doubled-unchecked": "target = 2 * max(len, min_capacity) with an unchecked multiply",
    "always-noop": "shrink_to returns Ok without doing anything",
    "copy-one-too-long": "the vmalloc path copies len + 1 elements into the new buffer",
    "noop-path-reallocs": "with nothing to shrink, a live buffer is still reallocated to its own layout",
}

ALLOCATOR_FAULTS: dict[str, str] = {
    "kmalloc-unrounded": "kmalloc's object holds exactly the request, not its size class (ksize)",
    "kmalloc-max-ignored": "kmalloc serves requests above KMALLOC_MAX_SIZE",
    "vmalloc-pages-floor": "a vmalloc area maps floor(n / PAGE_SIZE) pages, not ceil",
    "kvmalloc-small-vmalloc": "kvmalloc falls back to vmalloc for requests of a page or less",
    "vmalloc-recorded-as-kmalloc": "is_vmalloc_addr does not recognise a fresh vmalloc area",
    "realloc-zero-keeps": "realloc to size 0 returns a dangling pointer without freeing",
    "realloc-zero-free-size": "realloc to size 0 frees with the new layout (0 bytes), not the old one",
    "krealloc-copies-new-size": "krealloc moving an object copies the new size, not ksize(old), reading past it",
}

# Faults in a platform's allocator limits: seeded into models bound to a platform
# on which they show (PLATFORM_FAULT_PRESETS, by page size).
PLATFORM_FAULTS: dict[str, str] = {
    "max-order-plus-one": "kmalloc's largest order is MAX_PAGE_ORDER + 1: it serves up to 2 * KMALLOC_MAX_SIZE",
    "huge-rounding-ignored": "a vmalloc area maps its request's pages even where the platform maps it huge",
    "kmalloc-minalign-ignored": "kmalloc uses x86-64's size classes, ignoring the arm64 minimum alignment",
}
# Each page size's default arm64 preset has huge vmalloc and a 64-byte kmalloc minimum.
PLATFORM_FAULT_PRESETS: dict[int, str] = {4096: "arm64-4k", 16384: "arm64-16k", 65536: "arm64-64k"}

# Faults in the generic shrink_to (models/vec.py, vec_z3.py: generic_shrink_to) and in linux-next's
# vrealloc (allocator.py, allocator_z3.py): seeded into the generic models (verify/check/mutants.py).
GENERIC_FAULTS: dict[str, str] = {
    "generic-noop-check-dropped": "the generic shrink_to reallocs even when capacity <= target: may grow the buffer",
    "generic-layout-kept": "the generic shrink_to keeps the old layout after a successful realloc",
    "vrealloc-frees-one-page-too-many": "linux-next's vrealloc shrink keeps one page fewer than the new size needs",
    "vrealloc-shrink-ignores-huge": "linux-next's vrealloc shrink frees pages of a huge-mapped area too",
}

# Faults in binder's operations rather than its policy: binder.binder_step and
# binder_z3's register and deregister apply them alike (through Policy.faults).
BINDER_OPERATION_FAULTS: dict[str, str] = {
    "binder-dereg-removes-last": "a deregistration removes the last process instead of the one leaving",
    "binder-failed-register-pops": "a failed registration also removes the last process",
    "binder-shrink-err-adopted": "a deregistration whose shrink_to fails records the target capacity anyway",
}

BINDER_FAULTS: dict[str, str] = {
    "binder-shrink-dropped": "the policy never calls shrink_to",
    "binder-trigger-inverted": "the policy shrinks when len >= cap/4 instead of len < cap/4",
    "binder-trigger-cap-8": "the policy shrinks only when len < cap/8",
    "binder-target-cap-half": "the policy shrinks to cap/2 (v4's target) instead of len*2",
    "binder-target-len-8": "the policy shrinks to len*8 instead of len*2",
    "binder-target-len-minus-one": "the policy shrinks to len - 1, which underflows once the last process leaves",
    **BINDER_OPERATION_FAULTS,
}

# Faults in the Vec operations binder's registrations and deregistrations make
# (push, retain): models/vec.py and vec_z3.py carry them; seeded into binder models.
BINDER_VEC_FAULTS: dict[str, str] = {
    "vec-in-binder-retain-drops-next": "retain also removes the element after the one it drops",
    "vec-in-binder-failed-push-drops-last": "a push whose allocation fails loses the last element",
    "vec-in-binder-push-stale-request": "a push that grows the buffer records its allocation with the old size",
}

FAULTS: dict[str, str] = {
    **SHRINK_FAULTS, **ALLOCATOR_FAULTS, **PLATFORM_FAULTS, **BINDER_FAULTS, **BINDER_VEC_FAULTS, **GENERIC_FAULTS
}


def check_faults(faults: frozenset[str]) -> None:
    unknown = sorted(faults - FAULTS.keys())
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}")


# --- decision points ------------------------------------------------------------
# A model function names each point where the kernel decides something
# (`at("target", max, len, min_capacity)`: the point, the kernel's rule and its
# inputs). Each encoding keeps one table per function, fault -> (point, override),
# with the same faults on the same points on both sides (tests/test_decisions.py).

Override = Callable[..., Any]  # (context, the value without this fault, *the point's inputs) -> the value


class DecisionPoints:
    """Evaluates a function's decision points: the kernel's rule unless a seeded fault overrides it.

    Overrides of one point apply in table order, each over the value before it
    (a thunk, which it may ignore). Nothing is computed that is not used, so a
    Z3 encoding builds exactly the terms of the path it takes.
    """

    def __init__(self, faults: frozenset[str], overrides: Mapping[str, tuple[str, Override]], context: Any) -> None:
        self.faults = faults
        self.overrides = overrides
        self.context = context

    def __call__(self, point: str, rule: Callable[..., Any], *inputs: Any) -> Any:
        value: Callable[[], Any] = functools.partial(rule, *inputs)
        for fault, (at, override) in self.overrides.items():
            if at == point and fault in self.faults:
                value = functools.partial(override, self.context, value, *inputs)
        return value()
