"""Z3 encoding of binder's all_procs operations: the counterpart of binder.py.

A deregistration removes its process either with `retain` of an identity, as
context.rs does, or (`remove_one`) by dropping the last element, which has
the same effect on len, capacity and the buffer as retain of the last identity
and needs no quantifier, so sequences of many steps stay cheap for the solver.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import z3

from models import vec_z3
from models.allocator_z3 import SymOutcome, ite, u64
from models.binder import Policy
from models.vec_z3 import SymPlatform, SymPush, SymRetain, SymShrinkTo, SymStep, SymTruncate, SymVec


@dataclass(frozen=True)
class SymBinderStep:
    pre: SymVec
    post: SymVec
    ok: Any
    reallocates: Any  # the buffer changed: a new layout or a different allocation
    shrink_attempted: Any
    shrink_ok: Any
    constraints: tuple[Any, ...]


def _changed(pre: SymVec, post: SymVec) -> Any:
    moved = z3.Or(pre.buf.live != post.buf.live, z3.And(pre.buf.live, post.buf.live, pre.buf.id != post.buf.id))
    return z3.Or(pre.layout_len != post.layout_len, moved)


def register(
    sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, prefix: str, faults: frozenset[str] = frozenset()
) -> SymBinderStep:
    """A registration; `faults` are the policy's seeded Vec faults (`Policy.faults`), as binder.binder_step passes."""
    st = vec_z3.step(sp, pre, SymPush(pid, outcome), faults, prefix=prefix)
    false = z3.BoolVal(False)
    return SymBinderStep(pre, st.post, st.ok, _changed(pre, st.post), false, false, st.constraints)


def deregister(
    sp: SymPlatform,
    policy: Policy,
    pre: SymVec,
    pid: Any,
    outcome: SymOutcome,
    prefix: str,
    remove_one: bool = False,
) -> SymBinderStep:
    removal = SymTruncate(pre.len - 1) if remove_one else SymRetain(pid)
    removed: SymStep = vec_z3.step(sp, pre, removal, policy.faults, prefix=f"{prefix}.retain")
    after = removed.post
    cap = sp.capacity(after)
    attempt = policy.trigger_z3(after.len, cap)
    shrunk = vec_z3.step(
        sp, after, SymShrinkTo(policy.target_z3(after.len, cap), outcome), policy.faults, prefix=f"{prefix}.shrink"
    )
    # shrink_to's error is ignored: on Err the list stays as retain left it.
    post = ite(attempt, shrunk.post, after)
    constraints = removed.constraints + shrunk.constraints
    return SymBinderStep(pre, post, z3.BoolVal(True), _changed(pre, post), attempt, shrunk.ok, constraints)


def initial() -> SymVec:
    """`KVVec::new()`: empty, dangling, no allocation yet."""
    i = z3.BitVec("i", 64)
    return SymVec(u64(0), u64(0), vec_z3.SymAlloc.none(), z3.Lambda([i], i), u64(1))


def any_state(prefix: str) -> SymVec:
    """Any list at all: len, layout and buffer free; the elements are processes 0, 1, 2, ...

    Identities are only compared for equality, so fixing them loses no generality.
    """
    fresh = SymVec.fresh(prefix)
    i = z3.BitVec("i", 64)
    return SymVec(fresh.len, fresh.layout_len, fresh.buf, z3.Lambda([i], i), fresh.next_id)


def with_next_id(v: SymVec, next_id: Any) -> SymVec:
    return dataclasses.replace(v, next_id=next_id)
