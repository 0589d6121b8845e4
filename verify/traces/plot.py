"""A picture of a counterexample: len, capacity and physical memory over its operations.

Two panels share the x axis, one point per state (0 is the state the trace
starts from, then one per operation): above, `len` and `capacity` in elements,
with the operations that shrank or grew the capacity marked (down and up
triangles) and those whose allocation failed (crosses); below, the physical
bytes the vector holds next to the bytes its layout asks for, with the kind of
buffer (kmalloc, vmalloc, none) marked at every state. A dotted vertical line
marks the operation at which the property fails; a cycle is shaded; the bounds
of binder.waste-bound and binder.reclaim are drawn when they are the property.
Values change at operations, so the lines are steps. A zero-sized T's capacity
(usize::MAX) is not drawn, only noted. A single call gets the trace's one-line
account as a caption.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from models.binder import BinderAction, BinderStep, Deregister, Register
from models.machine import USIZE_MAX
from models.vec import Action, Clear, Pop, Push, Reserve, Retain, ShrinkTo, Step, Truncate, VecState
from properties.binder import reclaim_bound
from verify.traces.trace import Trace

MAX_LABELLED = 20  # label every x tick with its operation up to this many operations


def short_name(a: Action | BinderAction) -> str:
    """A few characters naming an operation, for an x tick."""
    if isinstance(a, Register):
        return "reg"
    if isinstance(a, Deregister):
        return "dereg"
    if isinstance(a, ShrinkTo):
        return f"shrink_to({_count(a.min_capacity)})"
    if isinstance(a, Reserve):
        return f"reserve({_count(a.additional)})"
    if isinstance(a, Push):
        return "push"
    if isinstance(a, Pop):
        return "pop"
    if isinstance(a, Truncate):
        return f"truncate({_count(a.len)})"
    if isinstance(a, Clear):
        return "clear"
    if isinstance(a, Retain):
        return "retain"
    return type(a).__name__.lower()


def _count(n: int) -> str:
    """An element count, short: usize::MAX by name, large powers of two as 2^k."""
    if n == USIZE_MAX:
        return "usize::MAX"
    if n >= 1 << 20 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    return str(n)


def _bytes(n: float, _pos: Any = None) -> str:
    """A byte count for an axis tick: B, KiB, MiB, GiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def _byte_locator(top: int, page_size: int) -> Any:
    """Ticks at whole pages (a power of two of them) when the values reach a page, else small powers of two."""
    from matplotlib.ticker import MaxNLocator, MultipleLocator

    if top >= page_size:
        step = page_size
        while top / step > 8:
            step *= 2
        while top / step < 4 and step >= 16:
            step //= 2
        return MultipleLocator(step)
    return MaxNLocator(nbins=6, integer=True, steps=[1, 2, 4, 5, 8, 10])


def _failed(s: Step | BinderStep) -> bool:
    """The operation, or the shrink_to a deregistration made, returned Err."""
    if isinstance(s, BinderStep):
        return not s.ok or (s.shrink_attempted and not s.steps[-1].ok)
    return not s.ok


def _setup_summary(trace: Trace) -> str:
    """The setup operations, runs of pushes collapsed: `reserve(16384) [kmalloc fails], push x10`."""
    parts: list[str] = []
    for a in trace.setup:
        text = short_name(a)
        outcome = getattr(a, "outcome", None)
        if outcome is not None and not (outcome.kmalloc_ok and outcome.vmalloc_ok):
            text += f" [{outcome.describe()}]"
        if parts and parts[-1].split(" x")[0] == text:
            count = int(parts[-1].split(" x")[1]) if " x" in parts[-1] else 1
            parts[-1] = f"{text} x{count + 1}"
        else:
            parts.append(text)
    return ", ".join(parts)


def _kind(v: VecState) -> str:
    return "none" if v.buf is None else v.buf.kind.value


def plot(trace: Trace) -> bytes:
    """Draw `trace` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    plat = trace.platform
    states = [trace.initial, *(s.post for s in trace.steps)]
    n = len(trace.steps)
    xs = list(range(n + 1))
    # Extend the last level a little so the final state shows as a step, not a bare point.
    xs_line = [*xs, n + 0.6]

    def extended(values: list[int]) -> list[int]:
        return [*values, values[-1]]

    lens = [v.len for v in states]
    zero_sized = plat.elem_size == 0
    caps = [v.capacity(plat) for v in states]
    physical = [v.physical() for v in states]
    layout = [v.layout_bytes(plat) for v in states]
    byte_values = physical + layout  # what the bytes axis must show

    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(max(8.5, min(18.0, 6.0 + 0.55 * n)), 6.6),
        gridspec_kw={"height_ratios": [3, 2]},
    )

    # --- elements: len (shaded) and capacity ------------------------------------------
    top.fill_between(xs_line, extended(lens), step="post", color="#2ca02c", alpha=0.25, lw=0)
    top.plot(xs_line, extended(lens), drawstyle="steps-post", color="#2ca02c", lw=1.6, label="len")
    if zero_sized:
        top.text(
            0.5, 0.92, "zero-sized T: capacity is usize::MAX at every state (not plotted)",
            transform=top.transAxes, ha="center", va="top", fontsize=9, color="#555555",
        )
    else:
        top.plot(xs_line, extended(caps), drawstyle="steps-post", color="#1f77b4", lw=2.2, label="capacity")
        shrinks = [i for i in range(1, n + 1) if caps[i] < caps[i - 1]]
        grows = [i for i in range(1, n + 1) if caps[i] > caps[i - 1]]
        if shrinks:
            top.scatter(shrinks, [caps[i] for i in shrinks], marker="v", s=90, color="#d62728", zorder=5,
                        clip_on=False, label="shrink (capacity down)")
        if grows:
            top.scatter(grows, [caps[i] for i in grows], marker="^", s=90, color="#ff7f0e", zorder=5,
                        clip_on=False, label="grow (capacity up)")
    if trace.property_id.startswith("binder.waste-bound"):
        top.plot(xs_line, extended([4 * (k + 1) for k in lens]), drawstyle="steps-post", color="#7f7f7f", lw=1.2,
                 ls=":", label="waste bound 4 * (len + 1)")
    failed = [i for i, s in enumerate(trace.steps, start=1) if _failed(s)]
    if failed:
        level = lens if zero_sized else caps
        top.scatter(failed, [level[i] for i in failed], marker="X", s=80, color="black", zorder=6,
                    clip_on=False, label="allocation failed (Err)")
    top.set_ylabel("elements")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.margins(y=0.15)
    top.set_ylim(bottom=0)
    if max(lens if zero_sized else caps) == 0:
        top.set_ylim(0, 1)
    top.grid(True, alpha=0.3)

    # --- bytes: physical memory and the layout's bytes -------------------------------
    bottom.plot(xs_line, extended(physical), drawstyle="steps-post", color="#9467bd", lw=2.6,
                label="physical bytes held")
    if not zero_sized:
        bottom.plot(xs_line, extended(layout), drawstyle="steps-post", color="#333333", lw=1.2, ls="--",
                    zorder=4, label="layout bytes (capacity x size)")
    if trace.property_id.startswith("binder.reclaim"):
        bound = [reclaim_bound(plat, k) for k in lens]
        bottom.plot(xs_line, extended(bound), drawstyle="steps-post", color="#7f7f7f", lw=1.2, ls=":",
                    label="reclaim bound: kmalloc of\n4 * (len + 1) processes")
        byte_values += bound
    styles = {"kmalloc": ("o", "kmalloc buffer"), "vmalloc": ("s", "vmalloc buffer"), "none": ("x", "no buffer")}
    for kind, (marker, label) in styles.items():
        at = [i for i, v in enumerate(states) if _kind(v) == kind]
        if at:
            bottom.scatter(at, [physical[i] for i in at], marker=marker, s=40, color="#9467bd", zorder=5,
                           clip_on=False, label=label)
    bottom.set_ylabel("bytes")
    bottom.yaxis.set_major_locator(_byte_locator(max(byte_values), plat.page_size))
    bottom.yaxis.set_major_formatter(FuncFormatter(_bytes))
    bottom.margins(y=0.2)
    bottom.set_ylim(bottom=0)
    if max(byte_values) == 0:
        bottom.set_ylim(0, 1)
    bottom.grid(True, alpha=0.3)

    # --- the failing operation and a cycle -------------------------------------------
    fails = trace.failing_step
    for ax in (top, bottom):
        ax.axvline(fails, color="#d62728", lw=1.5, ls=":")
        if trace.cycle_from is not None:
            ax.axvspan(trace.cycle_from, fails, color="#ffbb78", alpha=0.25, lw=0)
    # Above the panel, so that it hides nothing the panel shows.
    top.annotate(
        f"{trace.property_id} fails", xy=(fails, 1.0), xycoords=("data", "axes fraction"),
        xytext=(0, 3), textcoords="offset points", ha="right" if n >= 4 else "center", va="bottom",
        fontsize=9, color="#d62728",
    )
    if trace.cycle_from is not None:
        top.annotate(
            "cycle", xy=(trace.cycle_from, 1.0), xycoords=("data", "axes fraction"),
            xytext=(4, -4), textcoords="offset points", ha="left", va="top", fontsize=9, color="#b5651d",
        )

    # --- x axis: operations -----------------------------------------------------------
    bottom.set_xlim(-0.4, n + 0.6)
    if n <= MAX_LABELLED:
        bottom.set_xticks(xs)
        bottom.set_xticklabels(["start", *(short_name(a) for a in trace.actions)], rotation=40, ha="right",
                               fontsize=9)
        bottom.set_xlabel("operation (state after it)")
    else:
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_xlabel("state (0 = start, i = after operation i)")

    for ax in (top, bottom):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.9, borderaxespad=0)

    what = f"policy {trace.policy}, " if trace.policy is not None else ""
    size = f"size_of::<T>() = {plat.elem_size} B"
    fig.suptitle(
        f"{trace.property_id} on {trace.model}\n{what}{size}, PAGE_SIZE {plat.page_size} B", fontsize=11
    )
    if trace.policy is None:
        # A single call: the one-line account (sizes, buffer kinds, allocator outcome) says what happened.
        account = trace.one_line()
        if trace.setup:
            account = f"start built by {_setup_summary(trace)}; then {account}"
        caption = "\n".join(textwrap.wrap(account, 120))
        fig.text(0.01, 0.005, caption, ha="left", va="bottom", fontsize=8, color="#333333", family="monospace")
        fig.tight_layout(rect=(0, 0.035 * (caption.count("\n") + 1), 1, 1))
    else:
        fig.tight_layout()
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=110)
    finally:
        plt.close(fig)
    return png.getvalue()
