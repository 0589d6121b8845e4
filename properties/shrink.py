"""Single-call properties of `KVVec::shrink_to` (v6), and the memory safety of `reserve` beneath `push`.

Each property is written twice, side by side: `_z3` over the encoded step and
`_py` over the reference-model step. The solver proves the first for every
pre-state that satisfies the type invariants; the second judges a replayed
counterexample and the cross-check.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import z3

from models import allocator_z3 as kvz
from models import vec_z3
from models.allocator import Fn, Kind, kmalloc_physical, vmalloc_physical
from models.allocator_z3 import fn_code, u64
from models.catalogue import ModelSpec
from models.machine import PRESETS, Platform, div_ceil
from models.variants import MERGED
from models.vec import Reserve, ShrinkTo, Step, VecState, step
from models.vec_z3 import SymPlatform, SymShrinkTo, SymStep, SymVec, type_invariant
from properties.base import StepProperty

# --- shared helpers, Z3 then Python -------------------------------------------


def wide(x: Any) -> Any:
    """Zero-extend to 128 bits, where the products of two usize values are exact."""
    return z3.ZeroExt(64, x)


def target_z3(st: SymStep, a: SymShrinkTo) -> Any:
    return z3.If(z3.UGE(st.pre.len, a.min_capacity), st.pre.len, a.min_capacity)


def target_py(s: Step) -> int:
    assert isinstance(s.action, ShrinkTo)
    return max(s.pre.len, s.action.min_capacity)


def physical_z3(v: SymVec) -> Any:
    return z3.If(v.buf.live, v.buf.physical, u64(0))


def same_buffer_z3(a: SymVec, b: SymVec) -> Any:
    return z3.And(a.buf.live, b.buf.live, a.buf.id == b.buf.id)


def same_buffer_py(a: VecState, b: VecState) -> bool:
    return a.buf is not None and b.buf is not None and a.buf.id == b.buf.id


def elements_equal_z3(a: SymVec, b: SymVec) -> Any:
    """Same length and the same identity at every index (a fresh index stands for all)."""
    k = z3.BitVec("k", 64)
    return z3.And(a.len == b.len, z3.Implies(z3.ULT(k, a.len), a.elems[k] == b.elems[k]))


def state_equal_z3(a: SymVec, b: SymVec) -> Any:
    buffers = z3.And(
        a.buf.live == b.buf.live,
        z3.Implies(
            a.buf.live,
            z3.And(
                a.buf.id == b.buf.id,
                a.buf.vmalloc == b.buf.vmalloc,
                a.buf.requested == b.buf.requested,
                a.buf.physical == b.buf.physical,
            ),
        ),
    )
    return z3.And(a.layout_len == b.layout_len, buffers, elements_equal_z3(a, b))


def state_equal_py(a: VecState, b: VecState) -> bool:
    return (a.len, a.layout_len, a.buf, a.elems) == (b.len, b.layout_len, b.buf, b.elems)


def pages_z3(sp: SymPlatform, v: SymVec) -> Any:
    nbytes = sp.times_size_wide(v.layout_len)
    page = z3.BitVecVal(sp.plat.page_size, 128)
    return z3.UDiv(nbytes + page - 1, page)


def pages_py(plat: Platform, v: VecState) -> int:
    return div_ceil(v.layout_bytes(plat), plat.page_size)


# --- the properties ---------------------------------------------------------------


def capacity_floor_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    target = target_z3(st, a)
    cap_pre, cap_post = sp.capacity(st.pre), sp.capacity(st.post)
    return z3.Implies(st.ok, z3.If(z3.UGT(cap_pre, target), z3.UGE(cap_post, target), cap_post == cap_pre))


def capacity_floor_py(plat: Platform, s: Step) -> bool:
    target = target_py(s)
    cap_pre, cap_post = s.pre.capacity(plat), s.post.capacity(plat)
    if not s.ok:
        return True
    return cap_post >= target if cap_pre > target else cap_post == cap_pre


def never_grows_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.ULE(sp.capacity(st.post), sp.capacity(st.pre))


def never_grows_py(plat: Platform, s: Step) -> bool:
    return s.post.capacity(plat) <= s.pre.capacity(plat)


def elements_kept_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return elements_equal_z3(st.pre, st.post)


def elements_kept_py(plat: Platform, s: Step) -> bool:
    return s.post.len == s.pre.len and s.post.elems == s.pre.elems


def err_unchanged_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    fx = st.effects
    untouched = z3.And(state_equal_z3(st.pre, st.post), z3.Not(fx.free_made))
    # Nothing leaked: whatever was allocated on the way was freed again.
    nothing_leaked = z3.Implies(fx.alloc_made, z3.And(fx.free_made, fx.free_id == fx.allocated.id))
    return z3.Implies(z3.Not(st.ok), z3.And(untouched, nothing_leaked))


def err_unchanged_py(plat: Platform, s: Step) -> bool:
    fx = s.effects
    if s.ok:
        return True
    leaked = fx.allocated is not None and (fx.freed is None or fx.freed.alloc_id != fx.allocated.id)
    return state_equal_py(s.pre, s.post) and fx.freed is None and not leaked


def page_rule_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    replaced = z3.And(st.pre.buf.live, st.pre.buf.vmalloc, z3.Not(same_buffer_z3(st.pre, st.post)))
    return z3.Implies(replaced, z3.ULT(pages_z3(sp, st.post), pages_z3(sp, st.pre)))


def page_rule_py(plat: Platform, s: Step) -> bool:
    pre = s.pre
    replaced = pre.buf is not None and pre.buf.kind.value == "vmalloc" and not same_buffer_py(pre, s.post)
    return not replaced or pages_py(plat, s.post) < pages_py(plat, pre)


def kmalloc_path_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    pre, fx = st.pre, st.effects
    on_path = z3.And(
        pre.buf.live, z3.Not(pre.buf.vmalloc), sp.elem_size != 0, z3.UGT(sp.capacity(pre), target_z3(st, a))
    )
    target_bytes = sp.times_size_wide(target_z3(st, a))
    one_realloc = z3.And(
        fx.ncalls() == 1,
        fx.call_fn[0] == fn_code(Fn.REALLOC),
        wide(fx.call_new[0]) == target_bytes,
        fx.call_old[0] == sp.layout_bytes(pre),
    )
    layout = z3.If(st.ok, st.post.layout_len == target_z3(st, a), st.post.layout_len == pre.layout_len)
    return z3.Implies(on_path, z3.And(one_realloc, layout))


def kmalloc_path_py(plat: Platform, s: Step) -> bool:
    pre = s.pre
    target = target_py(s)
    on_path = pre.buf is not None and pre.buf.kind.value == "kmalloc"
    if not (on_path and plat.elem_size != 0 and pre.capacity(plat) > target):
        return True
    calls = s.effects.calls
    one_realloc = (
        len(calls) == 1
        and calls[0].fn is Fn.REALLOC
        and calls[0].new_bytes == target * plat.elem_size
        and calls[0].old_bytes == pre.layout_bytes(plat)
    )
    layout = s.post.layout_len == (target if s.ok else pre.layout_len)
    return one_realloc and layout


def zst_noop_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    unchanged = z3.And(st.ok, st.effects.ncalls() == 0, state_equal_z3(st.pre, st.post))
    return z3.Implies(sp.elem_size == 0, unchanged)


def zst_noop_py(plat: Platform, s: Step) -> bool:
    return plat.elem_size != 0 or (s.ok and not s.effects.calls and state_equal_py(s.pre, s.post))


def target_zero_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    premise = z3.And(target_z3(st, a) == 0, sp.elem_size != 0, z3.UGT(sp.capacity(st.pre), 0))
    fx = st.effects
    freed = z3.And(fx.free_made, fx.free_id == st.pre.buf.id)
    return z3.Implies(premise, z3.And(st.ok, st.post.layout_len == 0, z3.Not(st.post.buf.live), freed))


def target_zero_py(plat: Platform, s: Step) -> bool:
    if not (target_py(s) == 0 and plat.elem_size != 0 and s.pre.capacity(plat) > 0):
        return True
    fx = s.effects
    freed = fx.freed is not None and s.pre.buf is not None and fx.freed.alloc_id == s.pre.buf.id
    return s.ok and s.post.layout_len == 0 and s.post.buf is None and freed


def contract_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    pre, post, fx = st.pre, st.post, st.effects
    frees_old = z3.And(fx.free_made, pre.buf.live, fx.free_id == pre.buf.id)
    frees_new = z3.And(fx.free_made, fx.alloc_made, fx.free_id == fx.allocated.id)
    # A free names a live allocation and passes the layout it was made with.
    free_valid = z3.Implies(
        fx.free_made,
        z3.Or(
            z3.And(frees_old, fx.free_nbytes == pre.buf.requested),
            z3.And(frees_new, fx.free_nbytes == fx.allocated.requested),
        ),
    )
    # Afterwards exactly the vector's buffer is live: nothing leaked, nothing lost.
    old_kept = z3.And(pre.buf.live, z3.Not(frees_old))
    new_kept = z3.And(fx.alloc_made, z3.Not(frees_new))
    holds_old = z3.And(post.buf.live, post.buf.id == pre.buf.id)
    holds_new = z3.And(post.buf.live, post.buf.id == fx.allocated.id)
    live_set = z3.And(
        z3.Implies(old_kept, holds_old),
        z3.Implies(new_kept, holds_new),
        z3.Implies(post.buf.live, z3.Or(z3.And(old_kept, holds_old), z3.And(new_kept, holds_new))),
    )
    # A replaced buffer is freed only after its elements were copied out.
    replaced = z3.And(pre.buf.live, post.buf.live, post.buf.id != pre.buf.id)
    copied_first = z3.And(
        frees_old,
        fx.copy_made,
        fx.copy_src == pre.buf.id,
        fx.copy_dst == post.buf.id,
        fx.copy_before_free,
        z3.UGE(wide(fx.copy_nbytes), sp.times_size_wide(pre.len)),
    )
    return z3.And(free_valid, live_set, z3.Implies(replaced, copied_first))


def contract_py(plat: Platform, s: Step) -> bool:
    pre, post, fx = s.pre, s.post, s.effects
    frees_old = fx.freed is not None and pre.buf is not None and fx.freed.alloc_id == pre.buf.id
    frees_new = fx.freed is not None and fx.allocated is not None and fx.freed.alloc_id == fx.allocated.id
    if fx.freed is not None:
        valid_old = frees_old and pre.buf is not None and fx.freed.nbytes == pre.buf.requested
        valid_new = frees_new and fx.allocated is not None and fx.freed.nbytes == fx.allocated.requested
        if not (valid_old or valid_new):
            return False
    live_after = set()
    if pre.buf is not None and not frees_old:
        live_after.add(pre.buf.id)
    if fx.allocated is not None and not frees_new:
        live_after.add(fx.allocated.id)
    if live_after != ({post.buf.id} if post.buf is not None else set()):
        return False
    if pre.buf is not None and post.buf is not None and post.buf.id != pre.buf.id:
        cp = fx.copied
        return (
            frees_old
            and cp is not None
            and (cp.src, cp.dst) == (pre.buf.id, post.buf.id)
            and fx.copy_before_free
            and cp.nbytes >= pre.len * plat.elem_size
        )
    return True


def _known_z3(st: SymStep, alloc_id: Any) -> Any:
    """`alloc_id` names the buffer the vector held before the call, or the allocation the call made."""
    pre, fx = st.pre, st.effects
    return z3.Or(z3.And(pre.buf.live, alloc_id == pre.buf.id), z3.And(fx.alloc_made, alloc_id == fx.allocated.id))


def _extent_z3(st: SymStep, alloc_id: Any, field: str) -> Any:
    """A size field of the known allocation `alloc_id`."""
    pre, fx = st.pre, st.effects
    return z3.If(z3.And(pre.buf.live, alloc_id == pre.buf.id), getattr(pre.buf, field), getattr(fx.allocated, field))


def _freed_before_copy_z3(st: SymStep, alloc_id: Any) -> Any:
    fx = st.effects
    return z3.And(fx.free_made, fx.free_id == alloc_id, z3.Not(fx.copy_before_free))


def memory_safe_z3(sp: SymPlatform, st: SymStep, a: Any) -> Any:
    pre, post, fx = st.pre, st.post, st.effects
    # A fresh allocation never aliases the live buffer.
    fresh = z3.Implies(fx.alloc_made, z3.Not(z3.And(pre.buf.live, fx.allocated.id == pre.buf.id)))
    src, dst, nbytes = fx.copy_src, fx.copy_dst, fx.copy_nbytes
    # Every copy in the models starts at offset 0 of both buffers, so its byte ranges are [0, nbytes).
    copy_safe = z3.Implies(
        fx.copy_made,
        z3.And(
            _known_z3(st, src), z3.Not(_freed_before_copy_z3(st, src)),
            _known_z3(st, dst), z3.Not(_freed_before_copy_z3(st, dst)),
            src != dst,
            z3.ULE(nbytes, _extent_z3(st, src, "physical")),
            z3.ULE(nbytes, _extent_z3(st, dst, "requested")),
        ),
    )
    free_safe = z3.Implies(fx.free_made, _known_z3(st, fx.free_id))
    # Nothing leaks and nothing dangles: afterwards exactly the vector's buffer is live.
    old_live = z3.And(pre.buf.live, z3.Not(z3.And(fx.free_made, fx.free_id == pre.buf.id)))
    new_live = z3.And(fx.alloc_made, z3.Not(z3.And(fx.free_made, fx.free_id == fx.allocated.id)))
    holds_old = z3.And(post.buf.live, post.buf.id == pre.buf.id)
    holds_new = z3.And(post.buf.live, post.buf.id == fx.allocated.id)
    live_set = z3.And(
        z3.Implies(old_live, holds_old),
        z3.Implies(new_live, holds_new),
        z3.Implies(post.buf.live, z3.Or(z3.And(old_live, holds_old), z3.And(new_live, holds_new))),
    )
    return z3.And(fresh, copy_safe, free_safe, live_set)


def memory_safe_py(plat: Platform, s: Step) -> bool:
    pre, post, fx = s.pre, s.post, s.effects
    known = {a.id: a for a in (fx.allocated, pre.buf) if a is not None}  # the old buffer wins an id clash
    if fx.allocated is not None and pre.buf is not None and fx.allocated.id == pre.buf.id:
        return False

    def freed_before_copy(alloc_id: int) -> bool:
        return fx.freed is not None and fx.freed.alloc_id == alloc_id and not fx.copy_before_free

    cp = fx.copied
    if cp is not None:
        src, dst = known.get(cp.src), known.get(cp.dst)
        if src is None or dst is None or freed_before_copy(cp.src) or freed_before_copy(cp.dst) or cp.src == cp.dst:
            return False
        if cp.nbytes > src.physical or cp.nbytes > dst.requested:
            return False
    if fx.freed is not None and fx.freed.alloc_id not in known:
        return False
    live_after = {i for i in known if fx.freed is None or fx.freed.alloc_id != i}
    return live_after == ({post.buf.id} if post.buf is not None else set())


def no_overflow_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.Not(st.overflow)


def no_overflow_py(plat: Platform, s: Step) -> bool:
    return not s.overflow


def physical_never_grows_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.ULE(physical_z3(st.post), physical_z3(st.pre))


def physical_never_grows_py(plat: Platform, s: Step) -> bool:
    return s.post.physical() <= s.pre.physical()


def change_lowers_physical_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    changed = z3.And(st.ok, st.post.layout_len != st.pre.layout_len)
    return z3.Implies(changed, z3.ULT(physical_z3(st.post), physical_z3(st.pre)))


def change_lowers_physical_py(plat: Platform, s: Step) -> bool:
    changed = s.ok and s.post.layout_len != s.pre.layout_len
    return not changed or s.post.physical() < s.pre.physical()


def vmalloc_replaced_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    """The vmalloc path replaced a vmalloc buffer with another vmalloc buffer."""
    pre, post = st.pre.buf, st.post.buf
    return z3.And(st.ok, pre.live, pre.vmalloc, post.live, post.vmalloc, post.id != pre.id)


def vmalloc_replacement_frees_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.Implies(vmalloc_replaced_z3(sp, st, a), z3.ULT(physical_z3(st.post), physical_z3(st.pre)))


def vmalloc_replacement_frees_py(plat: Platform, s: Step) -> bool:
    pre, post = s.pre.buf, s.post.buf
    replaced = (
        s.ok and pre is not None and post is not None and pre.kind is Kind.VMALLOC
        and post.kind is Kind.VMALLOC and post.id != pre.id
    )
    return not replaced or s.post.physical() < s.pre.physical()


def vmalloc_replacement_not_larger_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.Implies(vmalloc_replaced_z3(sp, st, a), z3.ULE(physical_z3(st.post), physical_z3(st.pre)))


def vmalloc_replacement_not_larger_py(plat: Platform, s: Step) -> bool:
    pre, post = s.pre.buf, s.post.buf
    replaced = (
        s.ok and pre is not None and post is not None and pre.kind is Kind.VMALLOC
        and post.kind is Kind.VMALLOC and post.id != pre.id
    )
    return not replaced or s.post.physical() <= s.pre.physical()


def fresh_buffer_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    """shrink_to left a buffer it allocated in this call."""
    return z3.And(st.post.buf.live, z3.Or(z3.Not(st.pre.buf.live), st.post.buf.id != st.pre.buf.id))


def fresh_buffer_exact_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    buf = st.post.buf
    vmalloc_mapped = kvz.vmalloc_physical(sp.plat, buf.requested)
    mapped = z3.If(buf.vmalloc, vmalloc_mapped, kvz.kmalloc_physical(sp.plat, buf.requested))
    return z3.Implies(fresh_buffer_z3(sp, st, a), buf.physical == mapped)


def fresh_buffer_exact_py(plat: Platform, s: Step) -> bool:
    pre, buf = s.pre.buf, s.post.buf
    if buf is None or (pre is not None and pre.id == buf.id):
        return True
    if buf.kind is Kind.VMALLOC:
        return buf.physical == vmalloc_physical(plat, buf.requested)
    return buf.physical == kmalloc_physical(plat, buf.requested)


def huge_vmalloc(model: ModelSpec) -> bool:
    """Sized, on a platform whose vmalloc maps large areas huge (a named preset; binder's and the
    page-size defaults of 16 and 64 KiB pages are covered by their own presets' runs)."""
    return sized(model) and model.platform is not None and bool(PRESETS[model.platform].huge_vmap_sizes)


def invariants_kept_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return type_invariant(sp, st.post)


def invariants_kept_py(plat: Platform, s: Step) -> bool:
    return not s.post.invariant_violations(plat)


def nothing_to_shrink_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    fx = st.effects
    untouched = z3.And(
        st.ok, fx.ncalls() == 0, z3.Not(fx.alloc_made), z3.Not(fx.copy_made), z3.Not(fx.free_made),
        state_equal_z3(st.pre, st.post),
    )
    return z3.Implies(z3.ULE(sp.capacity(st.pre), target_z3(st, a)), untouched)


def nothing_to_shrink_py(plat: Platform, s: Step) -> bool:
    if s.pre.capacity(plat) > target_py(s):
        return True
    fx = s.effects
    no_effect = not fx.calls and fx.allocated is None and fx.copied is None and fx.freed is None
    return s.ok and no_effect and state_equal_py(s.pre, s.post)


# --- premises: what must be reachable for a proof to say something ------------


def has_work_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.ULT(target_z3(st, a), sp.capacity(st.pre))


def moves_elements_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(z3.UGT(st.pre.len, 0), has_work_z3(sp, st, a))


def fails_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.Not(st.ok)


def vmalloc_path_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(st.pre.buf.live, st.pre.buf.vmalloc, has_work_z3(sp, st, a))


def kmalloc_path_premise_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(st.pre.buf.live, z3.Not(st.pre.buf.vmalloc), has_work_z3(sp, st, a))


def target_zero_premise_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(target_z3(st, a) == 0, st.pre.buf.live)


def copies_z3(sp: SymPlatform, st: SymStep, a: Any) -> Any:
    return st.effects.copy_made


def nothing_to_do_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.ULE(sp.capacity(st.pre), target_z3(st, a))


def frees_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return st.effects.free_made


HAS_WORK = "capacity above the target"


def sized(model: ModelSpec) -> bool:
    return model.may_be_sized()


def merged_sized(model: ModelSpec) -> bool:
    """Sized, running v6's shrink_to (the merged code), whose vmalloc path allocates and copies."""
    return sized(model) and not model.code.generic


def generic(model: ModelSpec) -> bool:
    """Running the generic Vec<T, A>::shrink_to (models/variants.py)."""
    return sized(model) and model.code.generic


def with_kmalloc(model: ModelSpec) -> bool:
    return sized(model) and model.code.allocator != "vmalloc"


def with_vmalloc(model: ModelSpec) -> bool:
    return sized(model) and model.code.allocator != "kmalloc"


def generic_kvvec(model: ModelSpec) -> bool:
    """A generic KVVec: the one the TODO would replace v6's shrink_to with, comparable to it."""
    return generic(model) and model.code.allocator == "kvmalloc"


# --- the generic shrink_to: what it never does, and what it frees compared with v6 --------


def never_fails_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return st.ok


def never_fails_py(plat: Platform, s: Step) -> bool:
    return s.ok


def in_place_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    fx = st.effects
    kept = z3.Or(same_buffer_z3(st.pre, st.post), z3.Not(st.post.buf.live))
    return z3.And(z3.Not(fx.alloc_made), z3.Not(fx.copy_made), kept)


def in_place_py(plat: Platform, s: Step) -> bool:
    fx = s.effects
    return fx.allocated is None and fx.copied is None and (s.post.buf is None or same_buffer_py(s.pre, s.post))


def v6_step_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> SymStep:
    """v6's shrink_to (the merged code) from the same state with the same argument and allocator outcome."""
    merged = SymPlatform(replace(sp.plat, code=MERGED), sp.log2)
    return vec_z3.step(merged, st.pre, a, prefix="v6")


def v6_step_py(plat: Platform, s: Step) -> Step:
    return step(replace(plat, code=MERGED), s.pre, s.action)


def frees_as_v6_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.ULE(physical_z3(st.post), physical_z3(v6_step_z3(sp, st, a).post))


def frees_as_v6_py(plat: Platform, s: Step) -> bool:
    return s.post.physical() <= v6_step_py(plat, s).post.physical()


def on_kmalloc_path_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(st.pre.buf.live, z3.Not(st.pre.buf.vmalloc))


def on_vmalloc_path_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(st.pre.buf.live, st.pre.buf.vmalloc)


def v6_holds_pages_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    """v6 left no slab object: its buffer is a vmalloc area, a kmalloc page allocation, or none."""
    buf = v6_step_z3(sp, st, a).post.buf
    return z3.Or(z3.Not(buf.live), buf.vmalloc, z3.UGT(buf.requested, sp.plat.kmalloc_max_cache_size))


def v6_holds_pages_py(plat: Platform, s: Step) -> bool:
    buf = v6_step_py(plat, s).post.buf
    return buf is None or buf.kind is Kind.VMALLOC or buf.requested > plat.kmalloc_max_cache_size


def frees_as_v6_on(path: Any, path_py: Any) -> tuple[Any, Any]:
    """frees_as_v6 restricted to pre-states on one path (and, for Python, judged only there)."""

    def on_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
        return z3.Implies(path(sp, st, a), frees_as_v6_z3(sp, st, a))

    def on_py(plat: Platform, s: Step) -> bool:
        return not path_py(plat, s) or frees_as_v6_py(plat, s)

    return on_z3, on_py


def _kmalloc_pre(plat: Platform, s: Step) -> bool:
    return s.pre.buf is not None and s.pre.buf.kind is Kind.KMALLOC


def _vmalloc_pre(plat: Platform, s: Step) -> bool:
    return s.pre.buf is not None and s.pre.buf.kind is Kind.VMALLOC


def _vmalloc_pre_v6_pages(plat: Platform, s: Step) -> bool:
    return _vmalloc_pre(plat, s) and v6_holds_pages_py(plat, s)


def _vmalloc_v6_pages_z3(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
    return z3.And(on_vmalloc_path_z3(sp, st, a), v6_holds_pages_z3(sp, st, a))


def _with_work(premise: Any) -> Any:
    def both(sp: SymPlatform, st: SymStep, a: SymShrinkTo) -> Any:
        return z3.And(premise(sp, st, a), has_work_z3(sp, st, a))

    return both


KMALLOC_PATH_AS_V6 = frees_as_v6_on(on_kmalloc_path_z3, _kmalloc_pre)
VMALLOC_PATH_AS_V6 = frees_as_v6_on(on_vmalloc_path_z3, _vmalloc_pre)
V6_PAGES_AS_V6 = frees_as_v6_on(_vmalloc_v6_pages_z3, _vmalloc_pre_v6_pages)


def _keeps_pages(model: ModelSpec) -> bool:
    """v7.1's vrealloc keeps every page; linux-next's keeps those of a huge mapping (huge_vmalloc below)."""
    return model.code.vrealloc == "v7.1" or huge_vmalloc(model)


def zero_sized(model: ModelSpec) -> bool:
    return model.may_be_zero_sized()


PROPERTIES: tuple[StepProperty, ...] = (
    StepProperty(
        "shrink.capacity-floor",
        "after Ok, capacity >= max(len, min_capacity) if it was above that before, else unchanged",
        capacity_floor_z3,
        capacity_floor_py,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.never-grows",
        "capacity never grows",
        never_grows_z3,
        never_grows_py,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.elements-kept",
        "len and every element are preserved, in order",
        elements_kept_z3,
        elements_kept_py,
        premise=moves_elements_z3,
        premise_text="elements present and capacity above the target",
    ),
    StepProperty(
        "shrink.err-unchanged",
        "an Err leaves the vector exactly as it was, with nothing freed or leaked",
        err_unchanged_z3,
        err_unchanged_py,
        # A zero-sized T never fails and never frees: the premise is unreachable there; so does the
        # generic shrink_to (shrink.never-fails).
        applies=merged_sized,
        premise=fails_z3,
        premise_text="shrink_to returns Err",
    ),
    StepProperty(
        "shrink.vmalloc-page-rule",
        "a vmalloc buffer is replaced only if at least one page (by layout bytes) is freed",
        page_rule_z3,
        page_rule_py,
        applies=with_vmalloc,
        premise=vmalloc_path_z3,
        premise_text="a vmalloc buffer with capacity above the target",
    ),
    StepProperty(
        "shrink.kmalloc-one-realloc",
        "kmalloc path: exactly one realloc to the target layout; the layout changes only on Ok",
        kmalloc_path_z3,
        kmalloc_path_py,
        applies=with_kmalloc,
        premise=kmalloc_path_premise_z3,
        premise_text="a kmalloc buffer with capacity above the target",
    ),
    StepProperty(
        "shrink.zst-noop",
        "zero-sized T: no allocator call, no change, Ok",
        zst_noop_z3,
        zst_noop_py,
        applies=zero_sized,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.target-zero-frees",
        "target 0: Ok, capacity 0, the buffer freed and the pointer dangling",
        target_zero_z3,
        target_zero_py,
        applies=sized,
        premise=target_zero_premise_z3,
        premise_text="target 0 with a live buffer",
    ),
    StepProperty(
        "shrink.allocator-contract",
        "each free names a live allocation with its own layout; afterwards only the vector's"
        " buffer is live; a replaced buffer is freed after the copy",
        contract_z3,
        contract_py,
        # A zero-sized T never fails and never frees: the premise is unreachable there.
        applies=sized,
        premise=frees_z3,
        premise_text="shrink_to frees a buffer",
    ),
    StepProperty(
        "shrink.memory-safe",
        "every copy reads within its live source and writes within its live destination (by bytes),"
        " nothing is used after it is freed, only a live allocation is freed, a fresh allocation never"
        " aliases the buffer, and afterwards exactly the vector's buffer is live (nothing leaks)",
        memory_safe_z3,
        memory_safe_py,
        # The generic shrink_to never copies (shrink.in-place): the premise is unreachable there.
        applies=merged_sized,
        premise=copies_z3,
        premise_text="shrink_to copies the elements into a new buffer",
        by_conjunct=True,
    ),
    StepProperty(
        "reserve.memory-safe",
        "reserve (and so push, which is reserve(1) and a write below the new capacity): the same memory"
        " safety of every allocator effect as shrink.memory-safe, on the growth paths (krealloc and"
        " vrealloc moving a buffer, kvrealloc's kvmalloc fallback)",
        memory_safe_z3,
        memory_safe_py,
        applies=sized,
        premise=copies_z3,
        premise_text="reserve moves the elements into a new buffer",
        operation=Reserve,
    ),
    StepProperty(
        "shrink.nothing-to-shrink",
        "capacity already at most max(len, min_capacity): Ok, no allocator call, no allocation, copy or"
        " free, and the vector unchanged",
        nothing_to_shrink_z3,
        nothing_to_shrink_py,
        applies=sized,
        premise=nothing_to_do_z3,
        premise_text="capacity at most the target (nothing to shrink)",
    ),
    StepProperty(
        "shrink.no-overflow",
        "no arithmetic in shrink_to wraps around, given the type invariants",
        no_overflow_z3,
        no_overflow_py,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.invariants-kept",
        "after shrink_to, Ok or Err, the type invariants hold: len <= capacity, the layout fits,"
        " dangling exactly when empty, and the allocation is one the allocators can produce",
        invariants_kept_z3,
        invariants_kept_py,
        premise=has_work_z3,
        premise_text=HAS_WORK,
        by_conjunct=True,
    ),
    StepProperty(
        "shrink.physical-never-grows",
        "the physical memory held after shrink_to never exceeds what was held before",
        physical_never_grows_z3,
        physical_never_grows_py,
        expect_violated=merged_sized,
        explanation=(
            "the vmalloc path allocates the smaller buffer with KVmalloc::alloc, and kvmalloc"
            " tries kmalloc first: above two pages kmalloc hands out 2^order pages, so a"
            " 6-page vmalloc buffer shrunk to 5 pages can become an 8-page kmalloc object"
        ),
    ),
    StepProperty(
        "shrink.vmalloc-replacement-frees",
        "when the vmalloc path replaces a vmalloc buffer with a new vmalloc buffer, the physical memory"
        " held drops",
        vmalloc_replacement_frees_z3,
        vmalloc_replacement_frees_py,
        applies=merged_sized,  # the generic shrink_to replaces no buffer (shrink.in-place)
        expect_violated=huge_vmalloc,
        premise=vmalloc_replaced_z3,
        premise_text="the vmalloc path replaces a vmalloc buffer with a vmalloc buffer",
        explanation=(
            "the page rule counts pages of the layout's bytes, but where vmalloc maps large areas huge"
            " (arm64: 64 KiB contiguous PTEs with 4 KiB pages, PMDs) both areas round up to the same"
            " mapping size: 70000 bytes shrunk to 65537 copy into a new 128 KiB area and free an old"
            " 128 KiB one"
        ),
    ),
    StepProperty(
        "shrink.vmalloc-replacement-not-larger",
        "when the vmalloc path replaces a vmalloc buffer with a new vmalloc buffer, the physical memory"
        " held does not grow",
        vmalloc_replacement_not_larger_z3,
        vmalloc_replacement_not_larger_py,
        applies=merged_sized,
        expect_violated=huge_vmalloc,
        premise=vmalloc_replaced_z3,
        premise_text="the vmalloc path replaces a vmalloc buffer with a vmalloc buffer",
        explanation=(
            "vrealloc's new areas use small pages (__vmalloc_node_noprof passes no VM_ALLOW_HUGE_VMAP),"
            " but shrink_to's replacement comes from kvmalloc, which maps huge: a buffer grown by"
            " vrealloc to 69633 bytes holds 18 pages (73728 bytes), and shrink_to(65537) replaces it"
            " with a 131072-byte area"
        ),
    ),
    StepProperty(
        "shrink.fresh-buffer-exact",
        "a buffer shrink_to allocates holds exactly what the platform gives its request: the kmalloc"
        " size class or 2^order pages, or a kvmalloc area rounded up to its mapping size (huge where"
        " the platform maps it so)",
        fresh_buffer_exact_z3,
        fresh_buffer_exact_py,
        applies=merged_sized,  # the generic shrink_to allocates nothing (shrink.in-place)
        premise=fresh_buffer_z3,
        premise_text="shrink_to leaves a buffer it allocated",
    ),
    StepProperty(
        "shrink.change-lowers-physical",
        "a shrink_to that changes the buffer's layout lowers the physical memory held",
        change_lowers_physical_z3,
        change_lowers_physical_py,
        expect_violated=sized,
        explanation=(
            "on the kmalloc path krealloc keeps the same object whenever the new size fits"
            " in ksize, so the layout shrinks but no memory is returned; the vmalloc path"
            " can also trade pages for a larger power-of-two kmalloc object"
        ),
    ),
    StepProperty(
        "shrink.never-fails",
        "generic shrink_to: always Ok, whatever the allocators answer",
        never_fails_z3,
        never_fails_py,
        applies=generic,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.in-place",
        "generic shrink_to: no allocation and no copy; afterwards the buffer is the one before, or none"
        " (target 0)",
        in_place_z3,
        in_place_py,
        applies=generic,
        premise=has_work_z3,
        premise_text=HAS_WORK,
    ),
    StepProperty(
        "shrink.frees-as-v6.kmalloc-path",
        "generic shrink_to of a kmalloc buffer: the physical memory held afterwards is at most what v6's"
        " shrink_to (the merged code) holds from the same state, argument and allocator outcome",
        *KMALLOC_PATH_AS_V6,
        applies=generic_kvvec,
        premise=_with_work(on_kmalloc_path_z3),
        premise_text="a kmalloc buffer with capacity above the target",
    ),
    StepProperty(
        "shrink.frees-as-v6.vmalloc-path",
        "generic shrink_to of a vmalloc buffer: the physical memory held afterwards is at most what v6's"
        " shrink_to holds from the same state, argument and allocator outcome",
        *VMALLOC_PATH_AS_V6,
        applies=generic_kvvec,
        expect_violated=generic_kvvec,
        premise=_with_work(on_vmalloc_path_z3),
        premise_text="a vmalloc buffer with capacity above the target",
        explanation=(
            "v6 moves a vmalloc buffer whose target fits a slab object into that object (a 4097-byte"
            " area shrunk to 1 byte becomes an 8-byte object), which no vrealloc does; with v7.1's"
            " vrealloc the generic shrink_to frees no page at all"
        ),
    ),
    StepProperty(
        "shrink.frees-as-v6.when-v6-holds-pages",
        "generic shrink_to of a vmalloc buffer, where v6 ends with pages (a vmalloc area, a kmalloc page"
        " allocation or nothing): the physical memory held afterwards is at most v6's",
        *V6_PAGES_AS_V6,
        applies=generic_kvvec,
        expect_violated=_keeps_pages,
        premise=_with_work(_vmalloc_v6_pages_z3),
        premise_text="a vmalloc buffer with capacity above the target, and v6 ends holding pages",
        explanation=(
            "v7.1's vrealloc keeps every page of an area it shrinks (its TODO), so the generic shrink_to"
            " frees nothing where v6 replaces the area with a smaller one; linux-next's vrealloc frees"
            " the pages past the target, never more than v6 holds, except where the area is mapped huge"
            " (arm64): it cannot free part of a huge page, and v6's smaller replacement maps small pages"
        ),
    ),
)
