"""Which kernel code a model runs: named choices, beside the machine's limits.

The merged code (v7.1) is the default of every choice: `KVVec::shrink_to` of
kvec.rs (v6 of the series), the `KVmalloc` allocator, and v7.1's vrealloc.
The other values model code that is not merged: the generic
`Vec<T, A>::shrink_to` the TODO in kvec.rs (v7.1, above its `shrink_to`) asks
for once vrealloc can shrink, for `A` = `Kmalloc`, `Vmalloc` or `KVmalloc`
(rust/kernel/alloc/allocator.rs, v7.1), and the vrealloc of linux-next that
frees the pages past the new size ("mm/vmalloc: free unused pages on vrealloc()
shrink"). A model records its non-default choices in its traces (#meta.variant.choices).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# Every choice and its values; the first value is the merged code's.
CHOICES: dict[str, tuple[str, ...]] = {
    # "v6": kvec.rs's KVVec-only shrink_to; "generic": Vec<T, A>::shrink_to calling A::realloc.
    "shrink": ("v6", "generic"),
    # The `A` of Vec<T, A>: KVVec, KVec or VVec (allocator.rs: KVmalloc, Kmalloc, Vmalloc).
    "allocator": ("kvmalloc", "kmalloc", "vmalloc"),
    # "v7.1": vrealloc keeps every page when shrinking (its TODO); "next": linux-next's, which frees
    # the pages past the new size of an area mapped with small pages.
    "vrealloc": ("v7.1", "next"),
}


@dataclass(frozen=True)
class KernelCode:
    """One value per choice; `KernelCode()` is the merged v7.1 code."""

    shrink: str = "v6"
    allocator: str = "kvmalloc"
    vrealloc: str = "v7.1"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in CHOICES[f.name]:
                raise ValueError(f"{f.name} is one of {', '.join(CHOICES[f.name])}, not {value!r}")
        if self.shrink == "v6" and self.allocator != "kvmalloc":
            raise ValueError("v6's shrink_to exists for KVVec (allocator kvmalloc) only")

    def choices(self) -> dict[str, str]:
        """The choices that differ from the merged code, as recorded in a trace's #meta.variant."""
        merged = KernelCode()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(merged, f.name)}

    @property
    def generic(self) -> bool:
        return self.shrink == "generic"

    @property
    def tracks_huge(self) -> bool:
        """Whether an area's mapping (huge or small pages) is state: only linux-next's vrealloc reads it."""
        return self.vrealloc == "next"


MERGED = KernelCode()


def code_from_choices(choices: dict[str, str]) -> KernelCode:
    """The KernelCode a trace's recorded choices name; a bad name or value is a ValueError."""
    unknown = sorted(set(choices) - CHOICES.keys())
    if unknown:
        raise ValueError(f"unknown choice {unknown[0]!r}")
    return KernelCode(**choices)
