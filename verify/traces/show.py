"""A trace as a step table a person reads in seconds, and the explored state graph as DOT."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.binder import BinderStep
from models.vec import Step
from verify.search.explorer import Exploration, canonical
from verify.traces.replay import Replayed
from verify.traces.trace import LoadedTrace

COLUMNS = ("step", "action", "outcome", "result", "len", "capacity", "backend", "layout B", "physical B", "pages")
# The columns whose change from the previous state is highlighted.
TRACKED = ("len", "capacity", "backend", "layout B", "physical B", "pages")


def snake(name: str) -> str:
    """ShrinkTo -> shrink_to: the Rust method's name."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _action_text(action: Any) -> str:
    fields = {k: v for k, v in action._asdict().items() if k != "op"}
    if action.op == "init":
        return "initial state"
    return f"{snake(action.op)}({', '.join(str(v) for v in fields.values())})"


def _outcome_text(outcome: Any) -> str:
    if not outcome.relevant:
        return "-"
    km = "k:ok" if outcome.kmalloc_ok else "k:fail"
    vm = "v:ok" if outcome.vmalloc_ok else "v:fail"
    return f"{km} {vm}"


def rows(loaded: LoadedTrace) -> list[dict[str, str]]:
    table = []
    for index, values in enumerate(loaded.states):
        table.append(
            {
                "step": str(index),
                "action": _action_text(values["action"]),
                "outcome": _outcome_text(values["outcome"]),
                "result": str(values["result"]),
                "len": str(values["len"]),
                "capacity": str(values["capacity"]),
                "backend": str(values["backend"]),
                "layout B": str(values["layout_bytes"]),
                "physical B": str(values["physical"]),
                "pages": str(values["pages"]),
            }
        )
    return table


def render_table(loaded: LoadedTrace, replayed: Replayed, color: bool) -> str:
    """The step table; a changed value is bold (on a terminal) or marked with '*'."""
    table = rows(loaded)
    widths = {c: max(len(c), *(len(r[c]) + 1 for r in table)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    for i, r in enumerate(table):
        cells = []
        for c in COLUMNS:
            text = r[c]
            changed = i > 0 and c in TRACKED and table[i - 1][c] != text
            if changed and color:
                cells.append("\033[1;33m" + text + "\033[0m" + " " * (widths[c] - len(text)))
            else:
                cells.append((text + ("*" if changed else "")).ljust(widths[c]))
        lines.append("  ".join(cells).rstrip())
    meta = loaded.meta
    plat = loaded.platform
    head = (
        f"{meta['property']} on {meta['model']}: T = {plat.elem_size} B, PAGE_SIZE {plat.page_size}"
        + (f", policy {loaded.policy}" if loaded.policy else "")
        + (f", faults {', '.join(sorted(loaded.faults))}" if loaded.faults else "")
    )
    failing = f"fails at step {meta['failing_step']}: {replayed.prop.statement}"
    on = "the Python model" if loaded.model.source is None else f"the kernel source {loaded.model.source}"
    verdict = f"the violation reproduces on {on}" if replayed.reproduces else "DOES NOT reproduce"
    return "\n".join([head, *lines, failing, *broken_values(replayed), verdict])


def broken_values(replayed: Replayed) -> list[str]:
    """The values the broken predicate reads at the failing step."""
    plat = replayed.trace.platform
    last = replayed.trace.steps[-1]
    pre, post = last.pre, last.post
    out = [
        f"  len {pre.len} -> {post.len}, capacity {pre.capacity(plat)} -> {post.capacity(plat)},"
        f" physical {pre.physical()} -> {post.physical()} bytes, result {'Ok' if last.ok else 'Err'}"
    ]
    if isinstance(last, Step):
        a = last.action
        if hasattr(a, "min_capacity"):
            target = max(pre.len, a.min_capacity)
            out.append(f"  target = max(len, min_capacity) = max({pre.len}, {a.min_capacity}) = {target}")
        calls = ", ".join(
            f"free(layout {c.old_bytes} B)" if c.fn.name == "FREE" else f"{c.fn.name.lower()}({c.new_bytes} B)"
            for c in last.effects.calls
        )
        out.append(f"  allocator calls: {calls or 'none'}; overflow: {last.overflow}")
    elif isinstance(last, BinderStep):
        steps = replayed.trace.steps
        if len(steps) >= 2 and isinstance(steps[-2], BinderStep):
            before = steps[-2]
            out.append(
                f"  the operation before: {snake(type(before.action).__name__)}, shrank: {before.shrank}"
                f" (capacity {before.pre.capacity(plat)} -> {before.post.capacity(plat)})"
            )
        out.append(
            f"  reallocates: {last.reallocates}, shrank: {last.shrank}, shrink attempted: {last.shrink_attempted}"
        )
        if last.arithmetic_fault is not None:
            out.append(f"  the policy's rule {replayed.trace.policy_rule or ''}: {last.arithmetic_fault}")
        if replayed.trace.cycle_from is not None:
            out.append(f"  the cycle starts at step {replayed.trace.cycle_from + 1}")
    return out


def to_dot(ex: Exploration, path: Iterable[BinderStep] = ()) -> str:
    """The explored graph in DOT; the states and operations of `path` are drawn in red."""
    ids = {state: f"s{i}" for i, state in enumerate(ex.graph.nodes)}
    hot_edges = {(canonical(s.pre), canonical(s.post)) for s in path}
    hot_nodes = {n for edge in hot_edges for n in edge}
    plat = ex.instance.platform
    lines = [
        "digraph explored {",
        f'  label="binder all_procs, policy {ex.policy.name}: {ex.policy.rule}; {ex.instance.describe()};'
        f' {ex.states} states, {ex.edges} edges";',
        "  node [shape=box, fontname=monospace];",
    ]
    for state, name in ids.items():
        backend = "none" if state.buf is None else state.buf.kind.value
        label = f"len {state.len} cap {state.capacity(plat)}\\n{backend} {state.physical()} B"
        style = ", color=red, penwidth=2" if state in hot_nodes else ""
        shape = ", peripheries=2" if state == ex.initial else ""
        lines.append(f'  {name} [label="{label}"{style}{shape}];')
    for u, v, data in ex.graph.edges(data=True):
        step = data["step"]
        op = "reg" if type(step.action).__name__ == "Register" else "dereg"
        attrs = [f'label="{op}{"" if step.ok else " Err"}"']
        if data["reallocates"]:
            attrs.append("style=bold")
        if (u, v) in hot_edges:
            attrs.append("color=red, penwidth=2")
        lines.append(f"  {ids[u]} -> {ids[v]} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
