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
from models.elements_z3 import IndexElems
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
    arithmetic_fault: Any  # the policy's rule wrapped or divided by zero (a deregistration's)


def _changed(pre: SymVec, post: SymVec) -> Any:
    moved = z3.Or(pre.buf.live != post.buf.live, z3.And(pre.buf.live, post.buf.live, pre.buf.id != post.buf.id))
    return z3.Or(pre.layout_len != post.layout_len, moved)


def register(sp: SymPlatform, pre: SymVec, pid: Any, outcome: SymOutcome, prefix: str, policy: Policy) -> SymBinderStep:
    """A registration, with the policy's seeded faults (`Policy.faults`), as binder.binder_step applies them."""
    if policy.source is not None:
        step: SymBinderStep = policy.source.register_z3(sp, pre, pid, outcome, prefix)
        return step
    faults = policy.faults
    st = vec_z3.step(sp, pre, SymPush(pid, outcome), faults, prefix=prefix)
    post = st.post
    if "binder-failed-register-pops" in faults:
        popped = dataclasses.replace(post, len=pre.len - 1)  # a failed push leaves the elements as they were
        post = ite(z3.And(z3.Not(st.ok), z3.UGT(pre.len, 0)), popped, post)
    false = z3.BoolVal(False)
    return SymBinderStep(pre, post, st.ok, _changed(pre, post), false, false, st.constraints, false)


def deregister(
    sp: SymPlatform,
    policy: Policy,
    pre: SymVec,
    pid: Any,
    outcome: SymOutcome,
    prefix: str,
    remove_one: bool = False,
    at: Any = None,
    present: Any = None,
) -> SymBinderStep:
    """`at`: remove the process at this index, without retain's quantifier; the same as retain of `pid`
    when `pid` stands there and the identities are distinct (as in every list built from new()), and
    retain itself is not faulted (a seeded retain fault needs the real retain step). `present` (with
    `at`): the process stands there only where this holds, and nowhere in the list elsewhere."""
    if policy.source is not None:
        step: SymBinderStep = policy.source.deregister_z3(sp, pre, pid, outcome, prefix, remove_one, at)
        return step
    if at is not None and "vec-in-binder-retain-drops-next" not in policy.faults:
        shifted = pre.elems.removed(at, u64(1))
        after, removal_constraints = dataclasses.replace(pre, len=pre.len - 1, elems=shifted), ()
        if present is not None:
            after = ite(present, after, pre)
    else:
        removal = SymTruncate(pre.len - 1) if remove_one else SymRetain(pid)
        removed: SymStep = vec_z3.step(sp, pre, removal, policy.faults, prefix=f"{prefix}.retain")
        after, removal_constraints = removed.post, removed.constraints
    if "binder-dereg-removes-last" in policy.faults:
        after = ite(z3.ULT(after.len, pre.len), dataclasses.replace(after, elems=pre.elems), after)
    cap = sp.capacity(after)
    attempt = policy.trigger_z3(after.len, cap)
    target = policy.target_z3(after.len, cap)
    shrunk = vec_z3.step(sp, after, SymShrinkTo(target, outcome), policy.faults, prefix=f"{prefix}.shrink")
    shrunk_post = shrunk.post
    if "binder-shrink-err-adopted" in policy.faults:
        shrunk_post = ite(shrunk.ok, shrunk_post, dataclasses.replace(shrunk_post, layout_len=target))
    # shrink_to's error is ignored: on Err the list stays as retain left it.
    post = ite(attempt, shrunk_post, after)
    constraints = removal_constraints + shrunk.constraints
    fault = policy.arithmetic_fault_z3(after.len, cap)
    return SymBinderStep(pre, post, z3.BoolVal(True), _changed(pre, post), attempt, shrunk.ok, constraints, fault)


def initial() -> SymVec:
    """`KVVec::new()`: empty, dangling, no allocation yet."""
    return SymVec(u64(0), u64(0), vec_z3.SymAlloc.none(), IndexElems(), u64(1))


def any_state(prefix: str) -> SymVec:
    """Any list at all: len, layout and buffer free; the elements are processes 0, 1, 2, ...

    Identities are only compared for equality, so fixing them loses no generality.
    """
    fresh = SymVec.fresh(prefix)
    return SymVec(fresh.len, fresh.layout_len, fresh.buf, IndexElems(), fresh.next_id)


def with_next_id(v: SymVec, next_id: Any) -> SymVec:
    return dataclasses.replace(v, next_id=next_id)
