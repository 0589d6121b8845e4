"""The 64-bit machine and the kernel constants the models share.

Python integers are unbounded, so the reference model states every wrap-around
explicitly with `wrap`; the Z3 encoding gets the same behaviour for free from
64-bit bit-vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

BITS = 64
USIZE_MAX = (1 << BITS) - 1
ISIZE_MAX = (1 << (BITS - 1)) - 1
# __kvmalloc_node refuses sizes above INT_MAX before trying vmalloc.
INT_MAX = (1 << 31) - 1

PAGE_SIZES = (4096, 16384, 65536)
# MAX_PAGE_ORDER defaults to 10 (CONFIG_ARCH_FORCE_MAX_ORDER); kmalloc cannot
# return more than PAGE_SIZE << MAX_PAGE_ORDER bytes (KMALLOC_MAX_SIZE).
MAX_PAGE_ORDER = 10


def wrap(value: int) -> int:
    """`value` as a usize: reduced modulo 2^64, as the machine computes it."""
    return value & USIZE_MAX


def div_ceil(value: int, divisor: int) -> int:
    """`usize::div_ceil`: exact ceiling division, which never overflows."""
    return -(-value // divisor)


@dataclass(frozen=True)
class Platform:
    """What a model run is parameterised by: the page size and the element size."""

    elem_size: int
    page_size: int = 4096

    def __post_init__(self) -> None:
        # Real pages are PAGE_SIZES; the explicit-state explorer also uses small
        # pages (down to 64 bytes) so that every allocator path fits a small graph.
        if not (64 <= self.page_size <= max(PAGE_SIZES) and self.page_size & (self.page_size - 1) == 0):
            raise ValueError(f"page size must be a power of two in 64..65536, not {self.page_size}")
        if not 0 <= self.elem_size <= ISIZE_MAX:
            raise ValueError(f"element size out of range: {self.elem_size}")

    @property
    def kmalloc_max_size(self) -> int:
        return self.page_size << MAX_PAGE_ORDER

    @property
    def kmalloc_max_cache_size(self) -> int:
        """Largest slab object: two pages (KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1)."""
        return 2 * self.page_size


def kmalloc_size_classes(page_size: int) -> tuple[int, ...]:
    """The slab size classes up to two pages (include/linux/slab.h, kmalloc_info).

    KMALLOC_MIN_SIZE is 8 on x86-64 and arm64; the 96 and 192 byte caches exist
    whenever the minimum is below 64.
    """
    classes = [c for c in (8, 16, 32, 64, 96, 128, 192) if c <= 2 * page_size]
    size = 256
    while size <= 2 * page_size:
        classes.append(size)
        size *= 2
    return tuple(classes)
