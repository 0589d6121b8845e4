"""The report of `verify policies`: a table (text, JSON, CSV) and the Pareto plot.

Every metric is exact on the explored instance and named with it; every verdict
carries the scope the engine gave it (a proof for all 64-bit sizes, k-induction,
BMC up to a depth, or the instance).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from properties.binder import WORST_CASE_K
from verify.check.sweep import PROPERTY_IDS, PolicyRow, front
from verify.search.explorer import Instance

FORMAT = "verify-policies/1"
MARKED = ("v4", "v6")  # drawn and named on the plot
# One letter a verdict in the text table.
LETTER = {"PROVED": "P", "VIOLATED": "V", "VACUOUS": "0", "UNKNOWN": "?"}
SHORT = {p: p.removeprefix("binder.") for p in PROPERTY_IDS}


def metrics_scope(instance: Instance) -> str:
    return f"exact on the explored instance ({instance.describe()}, every allocator outcome); not for all sizes"


def _window(row: PolicyRow) -> str:
    return "none" if row.metrics.regrow_window is None else str(row.metrics.regrow_window)


def _all_sizes(row: PolicyRow) -> str:
    return "" if row.all_sizes is None else row.all_sizes.text()


def _regrow_all_sizes(row: PolicyRow) -> str:
    return "" if row.regrow_all_sizes is None else row.regrow_all_sizes.text()


def _verdict(row: PolicyRow, prop_id: str) -> str:
    if prop_id not in row.applicable:
        return "n/a"
    cell = row.cells.get(prop_id)
    return "-" if cell is None else cell.verdict


def text(rows: Sequence[PolicyRow], instance: Instance, best: str | None = None) -> str:
    on_front = {r.name for r in front(rows)}
    sized = [r.all_sizes for r in rows if r.all_sizes is not None]
    pages = f"{sized[0].page_size} B pages, all sizes" if sized else ""
    head = ["policy", "rule", "waste", *([f"waste, {pages}"] if sized else []), "reallocs/16", "regrow",
            *([f"regrow, {pages}"] if sized else []), "reclaim", "front",
            *(f"{i + 1}" for i in range(len(PROPERTY_IDS)))]
    body = [[r.name, r.rule, str(r.metrics.waste), *([_all_sizes(r)] if sized else []), str(r.reallocs16),
             _window(r), *([_regrow_all_sizes(r)] if sized else []), str(r.metrics.reclaim),
             "*" if r.name in on_front else "",
             *(LETTER.get(_verdict(r, p), _verdict(r, p)) for p in PROPERTY_IDS)]
            for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *body]]
    lines += [
        "",
        f"metrics: {metrics_scope(instance)}.",
        "waste: least c with capacity < c*(len+1) after every deregistration (its shrink neither failed nor"
        " refused); reallocs/16: most reallocating operations among 16 consecutive; regrow: fewest registrations"
        " after a shrink until one reallocates (1: immediate regrow); reclaim: least r with physical bytes"
        " < r*8*(len+1) after every deregistration whose shrink did not fail; front: on the Pareto front of"
        " (waste, reallocs/16).",
        "verdicts: P PROVED, V VIOLATED, 0 VACUOUS, ? UNKNOWN, - not run (--prove all runs it), n/a the property"
        " says nothing about the policy; the properties:",
        *(f"  {i + 1:2d} {SHORT[p]}" for i, p in enumerate(PROPERTY_IDS)),
    ]
    if sized:
        lines.append("waste, all sizes: the least c proved for every sequence of operations by BMC and k-induction"
                     " (`<= c`: c - 1 neither proved nor refuted within the BMC depth; `not proved`: not even the"
                     " instance's c is k-inductive):")
        lines += [f"  {r.name}: {r.all_sizes.text()} ({r.all_sizes.detail})" for r in rows if r.all_sizes is not None]
        lines.append("regrow, all sizes: the least regrow window for every sequence, the least room a shrink leaves"
                     " plus one (`>= w`: proved from below, w not found from KVVec::new() within the BMC depth):")
        lines += [f"  {r.name}: {_regrow_all_sizes(r)} ({r.regrow_all_sizes.detail})" for r in rows
                  if r.regrow_all_sizes is not None]
    if best is not None:
        lines.append(best)
    return "\n".join(lines) + "\n"


def _as_json(row: PolicyRow, on_front: set[str]) -> dict[str, Any]:
    return {
        "name": row.name,
        "rule": row.rule,
        "origin": row.origin,
        "front": row.name in on_front,
        "metrics": row.metrics.to_json(),
        "waste_all_sizes": None if row.all_sizes is None else {
            "page_size": row.all_sizes.page_size, "bound": row.all_sizes.bound, "refuted": row.all_sizes.refuted,
            "detail": row.all_sizes.detail,
        },
        "regrow_window_all_sizes": None if row.regrow_all_sizes is None else {
            "page_size": row.regrow_all_sizes.page_size, "least": row.regrow_all_sizes.least,
            "exact": row.regrow_all_sizes.exact, "detail": row.regrow_all_sizes.detail,
        },
        "verdicts": {
            p: None if p not in row.cells else {
                "verdict": row.cells[p].verdict, "scope": row.cells[p].scope, "detail": row.cells[p].detail,
                "cached": row.cells[p].cached,
            } for p in row.applicable
        },
    }


def to_json(rows: Sequence[PolicyRow], instance: Instance, parameters: dict[str, Any],
            best: list[str] | None = None) -> str:
    on_front = {r.name for r in front(rows)}
    document = {
        "format": FORMAT,
        "parameters": parameters,
        "metrics_scope": metrics_scope(instance),
        "instance": {"page_size": instance.page_size, "max_capacity": instance.max_capacity},
        "policies": [_as_json(r, on_front) for r in rows],
        "front": [r.name for r in rows if r.name in on_front],
        "best": best,
    }
    return json.dumps(document, indent=2) + "\n"


def to_csv(rows: Sequence[PolicyRow]) -> str:
    on_front = {r.name for r in front(rows)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    reallocs = (f"reallocs{k}" for k in range(1, WORST_CASE_K + 1))
    writer.writerow(["policy", "rule", "origin", "front", "waste", *reallocs, "regrow_window", "reclaim",
                     "waste_all_sizes", "regrow_window_all_sizes", *PROPERTY_IDS])
    for r in rows:
        writer.writerow([r.name, r.rule, r.origin, r.name in on_front, r.metrics.waste, *r.metrics.reallocs,
                         "" if r.metrics.regrow_window is None else r.metrics.regrow_window, r.metrics.reclaim,
                         _all_sizes(r), _regrow_all_sizes(r),
                         *(_verdict(r, p) for p in PROPERTY_IDS)])
    return out.getvalue()


def plot(rows: Sequence[PolicyRow], instance: Instance) -> bytes:
    """Waste against worst-case reallocations per 16 operations: every policy, the front joined, v4 and v6 named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    points: dict[tuple[int, int], list[PolicyRow]] = {}
    for r in rows:
        points.setdefault((r.metrics.waste, r.reallocs16), []).append(r)
    xs, ys = zip(*points, strict=True) if points else ((), ())
    sizes = [18 + 6 * len(v) for v in points.values()]
    ax.scatter(xs, ys, s=sizes, color="0.6", alpha=0.7, label="policies (area: how many share the point)", zorder=2)
    edge = sorted({(r.metrics.waste, r.reallocs16) for r in front(rows)})
    if edge:
        ax.plot(*zip(*edge, strict=True), color="tab:blue", marker="o", drawstyle="steps-post", zorder=3,
                label="Pareto front")
    for name, colour in zip(MARKED, ("tab:orange", "tab:red"), strict=True):
        for r in rows:
            if r.name == name:
                ax.scatter([r.metrics.waste], [r.reallocs16], s=120, color=colour, marker="*", zorder=4,
                           label=f"{name}: {r.rule}")
    on_front = {r.name for r in front(rows)}
    for (x, y), members in points.items():
        if any(m.name in on_front for m in members):
            more = f" and {len(members) - 2} more" if len(members) > 2 else ""
            shown = ", ".join(m.name for m in members[:2]) + more
            ax.annotate(shown, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("waste factor: least c with capacity < c*(len+1) after every deregistration")
    ax.set_ylabel("worst-case reallocating operations per 16")
    ax.set_title(f"binder shrink policies, explored instance: {instance.describe()}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
