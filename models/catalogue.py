"""The models `verify` checks: KVVec<T> with v6 shrink_to, for several element sizes, and the generic shrink_to."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache

from models.binder import ELEM_SIZE, POLICIES, Policy, policy_named
from models.faults import check_faults
from models.machine import PRESETS, Platform
from models.variants import MERGED, KernelCode


@dataclass(frozen=True)
class ModelSpec:
    """A model: the element size and any seeded faults.

    The size is fixed (`size_min == size_max`) or symbolic: every power of two
    from `size_min` to `size_max`. Powers of two keep the solver's products
    shifts; a general symbolic size makes 64x64-bit multipliers that bit-blasting
    cannot decide in useful time, so other sizes get fixed-size models.
    """

    name: str
    description: str
    size_min: int
    size_max: int
    faults: frozenset[str] = frozenset()
    policy: str | None = None  # a binder shrink policy: the model is binder's all_procs
    # A named platform preset (models/machine.py); None: the default preset of the run's page size.
    platform: str | None = None
    # A policy a user defined (`policy_model`): its rule in the policy language; None: one of POLICIES.
    policy_rule: str | None = None
    # A kernel source file (kvec.rs, or binder's context.rs) whose functions are the model's steps
    # (verify/source/steps.py); the model is then declared to have the verdicts of the merged series, v6.
    source: str | None = None
    source_sha256: str | None = None  # the SHA-256 of `source` as the model was read from it
    # The kernel code it runs (models/variants.py): the merged code, or the generic shrink_to of the TODO.
    code: KernelCode = MERGED

    def __post_init__(self) -> None:
        check_faults(self.faults)
        if self.platform is not None and self.platform not in PRESETS:
            raise ValueError(f"unknown platform {self.platform!r}")
        if not 0 <= self.size_min <= self.size_max:
            raise ValueError(f"bad element size range {self.size_min}..{self.size_max}")
        if self.symbolic_size and not all(_is_pow2(s) for s in (self.size_min, self.size_max)):
            raise ValueError("a symbolic element size ranges over powers of two")

    @property
    def symbolic_size(self) -> bool:
        return self.size_min != self.size_max

    def sizes(self) -> tuple[int, ...]:
        """Every element size the model covers."""
        if not self.symbolic_size:
            return (self.size_min,)
        return tuple(1 << e for e in range(self.size_min.bit_length() - 1, self.size_max.bit_length()))

    def may_be_zero_sized(self) -> bool:
        return self.size_min == 0

    def may_be_sized(self) -> bool:
        return self.size_max > 0

    def with_faults(self, faults: frozenset[str]) -> ModelSpec:
        suffix = "+".join(sorted(faults))
        return replace(self, name=f"{self.name}!{suffix}", faults=faults)

    def with_platform(self, preset: str) -> ModelSpec:
        """The model on a named platform, named `name@preset` (before any `!faults`)."""
        return replace(self, name=f"{self.name}@{preset}", platform=preset)

    def binder_policy(self) -> Policy:
        """The shrink policy of a binder model, without its seeded faults (binder.with_faults adds them)."""
        assert self.policy is not None
        return policy_named(self.policy) if self.policy_rule is None else _defined(self.policy, self.policy_rule)

    def page_size(self, default: int) -> int:
        """The page size the model runs with: its platform's, else `default`."""
        return default if self.platform is None else PRESETS[self.platform].page_size

    def machine(self, elem_size: int, page_size: int) -> Platform:
        """The Platform of one run: the model's preset, else the default preset of `page_size`."""
        if self.platform is None:
            return Platform(elem_size, page_size, code=self.code)
        preset = PRESETS[self.platform]
        if preset.page_size != page_size:
            raise ValueError(f"{self.name} runs with {preset.page_size}-byte pages, not {page_size}")
        return replace(preset.platform(elem_size), code=self.code)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("kvvec-v6/zst", "KVVec<()>: a zero-sized T", 0, 0),
    ModelSpec("kvvec-v6/u8", "KVVec<u8>: the element of the series' KUnit tests", 1, 1),
    ModelSpec("kvvec-v6/u64", "KVVec<Arc<Process>>: binder's 8-byte element", 8, 8),
    ModelSpec("kvvec-v6/t24", "KVVec<T> with a 24-byte T (not a power of two)", 24, 24),
    ModelSpec("kvvec-v6/pow2", "KVVec<T>, size_of::<T>() symbolic: every power of two in 1..=4096", 1, 4096),
    *(
        ModelSpec(f"binder/{p.name}", f"binder all_procs, policy {p.name}: {p.rule}", 8, 8, policy=p.name)
        for p in POLICIES
    ),
    # The generic Vec<T, A>::shrink_to the TODO in kvec.rs asks for (models/variants.py), on v7.1's
    # vrealloc and on linux-next's, which frees pages when shrinking. One-byte elements: the KUnit
    # tests' element, with which every byte count is a request (README, "The generic shrink_to").
    ModelSpec("kvvec-generic-v7.1/u8", "KVVec<u8>, generic shrink_to, v7.1 vrealloc", 1, 1,
              code=KernelCode("generic", "kvmalloc", "v7.1")),
    ModelSpec("kvvec-generic-next/u8", "KVVec<u8>, generic shrink_to, linux-next vrealloc (frees pages)", 1, 1,
              code=KernelCode("generic", "kvmalloc", "next")),
    # The candidate replacement once more, for every power-of-two element size (as kvvec-v6/pow2).
    ModelSpec("kvvec-generic-next/pow2", "KVVec<T>, generic shrink_to, linux-next vrealloc, T of 1..=4096 bytes",
              1, 4096, code=KernelCode("generic", "kvmalloc", "next")),
    ModelSpec("kvec-generic/u8", "KVec<u8> (Kmalloc), generic shrink_to", 1, 1,
              code=KernelCode("generic", "kmalloc")),
    ModelSpec("vvec-generic-v7.1/u8", "VVec<u8> (Vmalloc), generic shrink_to, v7.1 vrealloc", 1, 1,
              code=KernelCode("generic", "vmalloc", "v7.1")),
    ModelSpec("vvec-generic-next/u8", "VVec<u8> (Vmalloc), generic shrink_to, linux-next vrealloc", 1, 1,
              code=KernelCode("generic", "vmalloc", "next")),
)


# A user's policy name: it becomes part of model names, trace file names and report rows.
POLICY_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


@cache
def _defined(name: str, rule: str) -> Policy:
    """One Policy per definition, so what is cached per policy (the explored graph) is shared."""
    return Policy.define(name, rule)


def policy_model(name: str, rule: str) -> ModelSpec:
    """The binder model `binder/NAME` of a policy defined in the policy language (models/policy_lang.py).

    A ValueError if the name is not a policy name or is one of POLICIES'; a PolicyError (a ValueError
    naming the column) if the rule does not parse.
    """
    if not POLICY_NAME.fullmatch(name):
        raise ValueError(f"policy name {name!r}: a lower-case letter, then letters, digits, '-' or '_' (at most 40)")
    if any(p.name == name for p in POLICIES):
        built_in = ", ".join(p.name for p in POLICIES)
        raise ValueError(f"policy name {name!r} is taken by a built-in policy ({built_in})")
    _defined(name, rule)
    return ModelSpec(f"binder/{name}", f"binder all_procs, policy {name}: {rule}", 8, 8, policy=name, policy_rule=rule)


def chosen_policies(specs: tuple[str, ...], defined: tuple[ModelSpec, ...]) -> list[ModelSpec]:
    """The binder models of `--policy SPEC...`: each SPEC names a built-in or `defined` policy, or is a rule.

    A rule (it has `=>`) becomes the policy `custom`, the next `custom-2`, and so on. A ValueError
    says which SPEC is wrong and, for a rule, at which column.
    """
    known = {m.policy: m for m in (*MODELS, *defined) if m.policy is not None}
    chosen: list[ModelSpec] = []
    rules = 0
    for spec in specs:
        if "=>" in spec:
            rules += 1
            try:
                chosen.append(policy_model("custom" if rules == 1 else f"custom-{rules}", spec))
            except ValueError as e:
                raise ValueError(f"--policy {spec!r}: {e}") from None
        elif spec in known:
            chosen.append(known[spec])
        else:
            raise ValueError(f"--policy {spec!r}: no such policy (one of {', '.join(known)}), nor a rule"
                             " 'TRIGGER => TARGET'")
    return list(dict.fromkeys(chosen))


def model_named(name: str) -> ModelSpec:
    """A catalogue model, or one bound to a platform (`name@preset`)."""
    base_name, _, preset = name.partition("@")
    for model in MODELS:
        if model.name == base_name:
            if not preset:
                return model
            if preset in PRESETS:
                return model.with_platform(preset)
    raise KeyError(name)


def machine_for(model_name: str, elem_size: int, page_size: int) -> Platform:
    """The Platform a run of the named model had: its `@preset`, else the page size's default preset."""
    base_name, _, preset = model_name.partition("!")[0].partition("@")
    code = next((m.code for m in MODELS if m.name == base_name), MERGED)
    if not preset:
        return Platform(elem_size, page_size, code=code)
    return replace(PRESETS[preset].platform(elem_size), code=code)


# --- models read from kernel source (`verify run --source`) -------------------------

# The element sizes of the kvvec models read from a kvec.rs: (name, size_min, size_max, what T is).
KVVEC_SOURCE_SIZES = (
    ("zst", 0, 0, "a zero-sized T"),
    ("u8", 1, 1, "u8"),
    ("u64", 8, 8, "an 8-byte T"),
    ("t24", 24, 24, "a 24-byte T"),
    ("pow2", 1, 4096, "size_of::<T>() symbolic: every power of two in 1..=4096"),
)
BINDER_SOURCE = "binder-src"
# A source policy is declared to have the merged series' verdicts: a difference from v6 is a finding.
DECLARED_SOURCE_POLICY = "v6"
SOURCE_POLICY = "src"  # the name of the policy a context.rs's deregister_process makes (its traces carry it)


def kvvec_source_models(path: str, sha256: str) -> tuple[ModelSpec, ...]:
    """`kvvec-src/<T>` for each element size: shrink_to and reserve read from the kvec.rs at `path`."""
    return tuple(
        ModelSpec(f"kvvec-src/{name}", f"KVVec<T>, {what}: shrink_to and reserve read from {path}", low, high,
                  source=path, source_sha256=sha256)
        for name, low, high, what in KVVEC_SOURCE_SIZES
    )


def binder_source_model(path: str, sha256: str) -> ModelSpec:
    """`binder-src`: binder's registration and deregistration (the policy) read from the context.rs at `path`."""
    return ModelSpec(
        BINDER_SOURCE, f"binder all_procs, registration and deregistration (the policy) read from {path}",
        ELEM_SIZE, ELEM_SIZE, policy=DECLARED_SOURCE_POLICY, source=path, source_sha256=sha256,
    )


def source_model_named(name: str, path: str, sha256: str) -> ModelSpec | None:
    """The source model `name` (as `verify run --source` names it) read from `path`; None for another name."""
    if name == BINDER_SOURCE:
        return binder_source_model(path, sha256)
    return next((m for m in kvvec_source_models(path, sha256) if m.name == name), None)
