"""Deliberately broken variants of shrink_to, to show that the properties catch them.

A fault is injected identically into the Python reference model and into the
Z3 encoding, so the counterexample a proof attempt finds replays on the Python
model. The kernel code has none of these faults; the unmutated model is the
one `verify run` checks.
"""

from __future__ import annotations

FAULTS: dict[str, str] = {
    "target-ignores-len": "target = min_capacity instead of max(len, min_capacity)",
    "target-ignores-min-capacity": "target = len instead of max(len, min_capacity)",
    "noop-check-dropped": "no early return when capacity <= target: may grow the buffer",
    "copy-one-short": "the vmalloc path copies len - 1 elements",
    "layout-updated-on-err": "the vmalloc path adopts the target layout when alloc fails",
    "page-rule-off-by-one": "the vmalloc path replaces the buffer when current_pages == target_pages",
    "kmalloc-deep-copy": "kmalloc buffers also take the alloc + copy + free path (as in v4)",
    "zst-check-dropped": "no early return for a zero-sized T",
    "target-zero-skipped": "the target == 0 branch returns Ok without freeing",
    "free-before-copy": "the old vmalloc buffer is freed before its elements are copied",
    "old-buffer-leaked": "the old vmalloc buffer is never freed",
    "free-with-new-layout": "the old vmalloc buffer is freed with the new layout",
    "target-doubled-unchecked": "target = 2 * max(len, min_capacity) with an unchecked multiply",
    "always-noop": "shrink_to returns Ok without doing anything",
}


def check_faults(faults: frozenset[str]) -> None:
    unknown = sorted(faults - FAULTS.keys())
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
