"""The 64-bit machine and the kernel constants the models share.

Python integers are unbounded, so the reference model states every wrap-around
explicitly with `wrap`; the Z3 encoding gets the same behaviour for free from
64-bit bit-vectors.

A platform is a page size plus the architecture's allocator limits (the
largest buddy order, the huge vmalloc mapping sizes, the minimum kmalloc
alignment). Each named preset below cites where its numbers come from; the
kernel sources are v7.1 unless a comment says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.variants import MERGED, KernelCode

BITS = 64
USIZE_MAX = (1 << BITS) - 1
ISIZE_MAX = (1 << (BITS - 1)) - 1
# mm/slub.c, __kvmalloc_node_noprof (v7.1; mm/util.c before v6.12): a size above
# INT_MAX is refused (with a warning unless __GFP_NOWARN) before vmalloc is tried.
INT_MAX = (1 << 31) - 1

KIB, MIB = 1 << 10, 1 << 20
PAGE_SIZES = (4096, 16384, 65536)
# include/linux/mmzone.h: MAX_PAGE_ORDER is CONFIG_ARCH_FORCE_MAX_ORDER when the
# architecture sets it, else 10. x86-64 does not set it.
MAX_PAGE_ORDER = 10
# include/linux/slab.h: KMALLOC_MIN_SIZE is 1 << KMALLOC_SHIFT_LOW = 8 on both
# architectures (ARCH_KMALLOC_MINALIGN is 8 on arm64 since v6.5, and undefined,
# so __alignof__(unsigned long long) = 8, on x86-64).
KMALLOC_MIN_SIZE = 8


def wrap(value: int) -> int:
    """`value` as a usize: reduced modulo 2^64, as the machine computes it."""
    return value & USIZE_MAX


def div_ceil(value: int, divisor: int) -> int:
    """`usize::div_ceil`: exact ceiling division, which never overflows."""
    return -(-value // divisor)


@dataclass(frozen=True)
class Platform:
    """What a model run is parameterised by: the element size and the machine's allocator limits.

    `Platform(elem_size, page_size)` is the default preset for that page size
    (PAGE_SIZE_PRESETS); `PlatformPreset.platform` builds any other.
    """

    elem_size: int
    page_size: int = 4096
    # The unset values (-1, None, 0) take the default preset's for `page_size` in __post_init__.
    max_page_order: int = -1
    # Mapping sizes above PAGE_SIZE that vmalloc may use for kvmalloc's areas
    # (VM_ALLOW_HUGE_VMAP), ascending; empty where huge vmalloc is off.
    huge_vmap_sizes: tuple[int, ...] | None = None
    # __kmalloc_minalign(): the slab classes below it are folded into it.
    kmalloc_min_align: int = 0
    # The kernel code the run models (models/variants.py): the merged v7.1 code unless a model says otherwise.
    # Left out of repr, which verify.traces.regression prints for the merged code as it always has.
    code: KernelCode = field(default=MERGED, repr=False)

    def __post_init__(self) -> None:
        # Real pages are PAGE_SIZES; the explicit-state explorer also uses small
        # pages (down to 64 bytes) so that every allocator path fits a small graph.
        if not (64 <= self.page_size <= max(PAGE_SIZES) and self.page_size & (self.page_size - 1) == 0):
            raise ValueError(f"page size must be a power of two in 64..65536, not {self.page_size}")
        if not 0 <= self.elem_size <= ISIZE_MAX:
            raise ValueError(f"element size out of range: {self.elem_size}")
        default = PRESETS[PAGE_SIZE_PRESETS.get(self.page_size, "x86_64")]
        # A frozen dataclass fills its own defaults through object.__setattr__.
        if self.max_page_order < 0:
            object.__setattr__(self, "max_page_order", default.max_page_order)
        if self.huge_vmap_sizes is None:
            object.__setattr__(self, "huge_vmap_sizes", default.huge_vmap_sizes)
        if self.kmalloc_min_align == 0:
            object.__setattr__(self, "kmalloc_min_align", default.kmalloc_min_align)

    @property
    def kmalloc_max_size(self) -> int:
        """KMALLOC_MAX_SIZE (include/linux/slab.h): 1 << (MAX_PAGE_ORDER + PAGE_SHIFT)."""
        return self.page_size << self.max_page_order

    @property
    def kmalloc_max_cache_size(self) -> int:
        """Largest slab object: two pages (include/linux/slab.h, KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1)."""
        return 2 * self.page_size

    @property
    def huge_sizes(self) -> tuple[int, ...]:
        """`huge_vmap_sizes` as a tuple (never None once constructed)."""
        return self.huge_vmap_sizes or ()

    def size_classes(self) -> tuple[int, ...]:
        return kmalloc_size_classes(self.page_size, self.kmalloc_min_align)


def kmalloc_size_classes(page_size: int, min_align: int = KMALLOC_MIN_SIZE) -> tuple[int, ...]:
    """The slab size classes up to two pages.

    include/linux/slab.h and mm/slab_common.c (v7.1), kmalloc_info: 8, 16, 32,
    64, 96, 128, 192, then powers of two up to KMALLOC_SHIFT_HIGH (two pages).
    mm/slab_common.c, new_kmalloc_cache: when __kmalloc_minalign() exceeds
    ARCH_KMALLOC_MINALIGN, each class is rounded up to a multiple of it and its
    requests are served by the cache of that size, so the classes are the
    rounded sizes (64: 96 becomes 128; 128: 192 becomes 256).
    """
    info = [c for c in (8, 16, 32, 64, 96, 128, 192) if c <= 2 * page_size]
    size = 256
    while size <= 2 * page_size:
        info.append(size)
        size *= 2
    return tuple(sorted({-(-c // min_align) * min_align for c in info}))


def vmap_mapping_size(plat: Platform, nbytes: int) -> int:
    """The mapping size __vmalloc_node_range_noprof (mm/vmalloc.c, v7.1) picks for a kvmalloc area.

    With VM_ALLOW_HUGE_VMAP and huge vmalloc on: PMD_SIZE if the size is at
    least PMD_SIZE (arch_vmap_pmd_supported), else arch_vmap_pte_supported_shift
    (arm64: the contiguous-PTE size if the size is at least that); the area is
    then ALIGN(size, mapping size). One NUMA node is assumed (the kernel divides
    the size by num_online_nodes() for NUMA_NO_NODE).
    """
    fitting = [s for s in plat.huge_sizes if nbytes >= s]
    return max(fitting) if fitting else plat.page_size


@dataclass(frozen=True)
class PlatformPreset:
    """A named machine: the page size and the allocator limits that come with it."""

    name: str
    page_size: int
    max_page_order: int
    huge_vmap_sizes: tuple[int, ...]
    kmalloc_min_align: int
    summary: str

    def platform(self, elem_size: int) -> Platform:
        return Platform(elem_size, self.page_size, self.max_page_order, self.huge_vmap_sizes, self.kmalloc_min_align)


# arm64 (v7.1 sources):
# - MAX_PAGE_ORDER: arch/arm64/Kconfig, ARCH_FORCE_MAX_ORDER: default 13 with
#   ARM64_64K_PAGES, 11 with ARM64_16K_PAGES, else 10.
# - Huge vmalloc: arch/arm64/Kconfig selects HAVE_ARCH_HUGE_VMALLOC (with
#   HAVE_ARCH_HUGE_VMAP); mm/vmalloc.c keeps vmap_allow_huge true unless booted
#   with `nohugevmalloc` (the *-nohuge presets). PMD_SIZE is 1 << PMD_SHIFT
#   (arch/arm64/include/asm/pgtable-hwdef.h: 2 MiB / 32 MiB / 512 MiB for 4K /
#   16K / 64K pages); CONT_PTE_SIZE is CONT_PTES << PAGE_SHIFT with CONT_PTE_SHIFT
#   4 / 7 / 5 (64 KiB / 2 MiB / 2 MiB); arch/arm64/include/asm/vmalloc.h,
#   arch_vmap_pte_supported_shift returns CONT_PTE_SHIFT for sizes >= CONT_PTE_SIZE.
# - Minimum kmalloc alignment: arch/arm64/include/asm/cache.h defines
#   ARCH_DMA_MINALIGN 128, ARCH_KMALLOC_MINALIGN 8 and dma_get_cache_alignment as
#   cache_line_size() (4 << CTR_EL0.CWG, 64 on common cores, at most 128);
#   mm/slab_common.c, __kmalloc_minalign uses it unless swiotlb bounce buffers
#   are allocated (then 8). The presets take the common 64-byte line.
# x86-64 (v7.1): arch/x86/Kconfig sets no ARCH_FORCE_MAX_ORDER (so 10), selects
# HAVE_ARCH_HUGE_VMAP but not HAVE_ARCH_HUGE_VMALLOC (huge vmalloc is off), and
# defines no ARCH_DMA_MINALIGN (kmalloc's minimum stays 8).
_ARM64_CACHE_LINE = 64
PRESETS: dict[str, PlatformPreset] = {
    p.name: p
    for p in (
        PlatformPreset("x86_64", 4096, 10, (), KMALLOC_MIN_SIZE, "4 KiB pages, MAX_PAGE_ORDER 10, no huge vmalloc"),
        PlatformPreset("arm64-4k", 4096, 10, (64 * KIB, 2 * MIB), _ARM64_CACHE_LINE,
                       "4 KiB pages, order 10, huge vmalloc (64 KiB cont-PTE, 2 MiB PMD), kmalloc min 64"),
        PlatformPreset("arm64-4k-nohuge", 4096, 10, (), _ARM64_CACHE_LINE,
                       "arm64-4k booted with nohugevmalloc: vmalloc maps 4 KiB pages"),
        PlatformPreset("arm64-16k", 16384, 11, (2 * MIB, 32 * MIB), _ARM64_CACHE_LINE,
                       "16 KiB pages, order 11, huge vmalloc (2 MiB cont-PTE, 32 MiB PMD), kmalloc min 64"),
        PlatformPreset("arm64-16k-nohuge", 16384, 11, (), _ARM64_CACHE_LINE,
                       "arm64-16k booted with nohugevmalloc: vmalloc maps 16 KiB pages"),
        PlatformPreset("arm64-64k", 65536, 13, (2 * MIB, 512 * MIB), _ARM64_CACHE_LINE,
                       "64 KiB pages, order 13, huge vmalloc (2 MiB cont-PTE, 512 MiB PMD), kmalloc min 64"),
        PlatformPreset("arm64-64k-nohuge", 65536, 13, (), _ARM64_CACHE_LINE,
                       "arm64-64k booted with nohugevmalloc: vmalloc maps 64 KiB pages"),
    )
}
# What `--page-size N` alone means: the default preset with that page size.
PAGE_SIZE_PRESETS: dict[int, str] = {4096: "x86_64", 16384: "arm64-16k", 65536: "arm64-64k"}
DEFAULT_PRESET = "x86_64"


def preset_named(name: str) -> PlatformPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown platform {name!r}; one of {', '.join(PRESETS)}") from None
