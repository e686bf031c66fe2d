"""What a plan will write, before anything is written (``tfrec build --dry-run``): counts,
folds, class (or tag) balance per fold and per shard, and the rows rejected while planning."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tfrec_tools import naming
from tfrec_tools.builder.config import sized_configs
from tfrec_tools.builder.plan import Plan
from tfrec_tools.builder.rows import RowSpec
from tfrec_tools.builder.run import existing_outputs


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan as plain data (JSON-ready). Decodes no image: rows rejected for their image
    content are only found when the shards are written."""
    config = plan.config
    sizes = [len(s.rows) for s in plan.shards]
    passes = {"sizes": [naming.size_folder(size) for size in config.sizes]} if config.sizes else {}
    return {
        "name": config.name,
        "out": config.out,
        **passes,  # a pass of several sizes: one folder of ``out`` per size
        "labels_from": config.labels_from,
        "labels": describe_labels(plan),
        "existing_build": any(existing_outputs(c) for c in sized_configs(config)),
        "rows": plan.num_rows,
        "records": sum(sizes),
        "shards": len(plan.shards),
        "shards_reason": plan.layout.reason,
        "folds": config.folds,
        "records_per_shard": {"min": min(sizes), "max": max(sizes)},
        "groups": plan.groups,
        "classes": list(plan.labels[0].classes) if plan.labels else [],
        "label_kind": plan.labels[0].kind if plan.labels else None,
        "label_notes": list(plan.notes),
        "untagged_rows": _untagged(plan),
        "per_fold": _per_fold(plan),
        "worst_share_deviation": _worst_deviation(plan),
        "rejected_while_planning": dict(sorted(Counter(r.reason for r in plan.rejected).items())),
        "unmatched_images": len(plan.unmatched),
        "warnings": list(plan.warnings),
    }


def render_summary(summary: dict[str, Any]) -> list[str]:
    """The summary as lines of text."""
    sizes = summary["records_per_shard"]
    lines = [
        f"plan for {summary['name']!r} in {summary['out']}; {summary['labels']}",
        *_size_lines(summary),
        *(f"  {note}" for note in summary["label_notes"]),
        f"  shards: {summary['shards_reason']}",
        f"  records: {summary['records']} of {summary['rows']} rows; "
        f"{sizes['min']}-{sizes['max']} per shard",
    ]
    if summary["groups"] is not None:
        lines.append(f"  groups: {summary['groups']} (none spans two shards)")
    lines += _fold_lines(summary)
    unit = "tag" if summary["label_kind"] == "multilabel" else "class"
    for cls, deviation in summary["worst_share_deviation"].items():
        lines.append(f"  {unit} {cls}: share deviates by at most {deviation:.1%} in any shard")
    rejected = summary["rejected_while_planning"]
    lines.append(f"  rejected while planning: {sum(rejected.values())}")
    lines += [f"    {reason}: {count}" for reason, count in rejected.items()]
    if summary["unmatched_images"]:
        lines.append(f"  images named by no row: {summary['unmatched_images']}")
    return lines + [f"warning: {warning}" for warning in summary["warnings"]]


def _size_lines(summary: dict[str, Any]) -> list[str]:
    if "sizes" not in summary:
        return []
    folders = ", ".join(f"{summary['out']}/{folder}" for folder in summary["sizes"])
    return [f"  sizes: {', '.join(summary['sizes'])} (one shard set each: {folders})"]


def describe_labels(plan: Plan) -> str:
    """Where the labels come from, in words: "labels from the CSV (3 classes: a, b, c)"."""
    if not plan.labels:
        why = " (the CSV has no label column)" if plan.config.labels_from == "csv" else ""
        return "no labels" + why
    source = {"csv": "the CSV", "folders": "class folders"}[plan.config.labels_from]
    classes, tagged = plan.labels[0].classes, plan.labels[0].kind == "multilabel"
    if tagged:
        source += ", multi-label"
    if classes:
        more = ", ..." if len(classes) > 5 else ""
        unit = "tags" if tagged else "classes"
        source += f" ({len(classes)} {unit}: {', '.join(classes[:5])}{more})"
    if tagged and _untagged(plan):
        source += f"; {_untagged(plan)} rows with no tag"
    return f"labels from {source}"


def _class_names(plan: Plan) -> list[str]:
    """The classes, or tags, of the first label; none for regression or no label."""
    if not plan.labels or plan.labels[0].kind == "regression":
        return []
    return list(plan.labels[0].classes)


def _codes(plan: Plan, row: RowSpec) -> list[int]:
    """The first label's class index as a list, or the indices of its tags."""
    value = row.values[0]
    if plan.labels[0].kind == "multilabel":
        return [i for i, hot in enumerate(value) if hot]
    return [int(value)]


def _untagged(plan: Plan) -> int | None:
    """Rows whose first label holds no tag (multi-label); None for other labels."""
    if not plan.labels or plan.labels[0].kind != "multilabel":
        return None
    return sum(1 for s in plan.shards for r in s.rows if not any(r.values[0]))


def _per_fold(plan: Plan) -> dict[str, dict[str, int]]:
    """Fold -> class name -> records (first label; with tags, records holding each tag);
    records only for regression or no label."""
    names = _class_names(plan)
    table: dict[str, Counter] = {}
    for shard in plan.shards:
        counts = table.setdefault("-" if shard.fold is None else str(shard.fold), Counter())
        if names:
            counts.update(names[code] for row in shard.rows for code in _codes(plan, row))
        else:
            counts["records"] += len(shard.rows)
    return {fold: dict(sorted(c.items())) for fold, c in sorted(table.items())}


def _worst_deviation(plan: Plan) -> dict[str, float]:
    """Class (tag) name -> the largest |share of the records in a shard that are of that
    class (hold that tag) - that share overall| over the shards."""
    names = _class_names(plan)
    if not names:
        return {}
    total = Counter(c for s in plan.shards for r in s.rows for c in _codes(plan, r))
    records = sum(len(s.rows) for s in plan.shards)
    worst = dict.fromkeys(range(len(names)), 0.0)
    for shard in plan.shards:
        counts = Counter(c for r in shard.rows for c in _codes(plan, r))
        for code in worst:
            share = counts[code] / len(shard.rows)
            worst[code] = max(worst[code], abs(share - total[code] / records))
    return {names[code]: round(value, 4) for code, value in worst.items() if total[code]}


def _fold_lines(summary: dict[str, Any]) -> list[str]:
    if not summary["folds"]:
        return ["  folds: none"]
    per_fold = summary["per_fold"]
    names = sorted({name for counts in per_fold.values() for name in counts})
    unit = "tag" if summary["label_kind"] == "multilabel" else "class"
    lines = [f"  folds: {summary['folds']}, records per {unit}:"]
    lines.append("    " + f"{'fold':<6}" + "".join(f"{n[:10]:>11}" for n in names))
    for fold, counts in per_fold.items():
        lines.append("    " + f"{fold:<6}" + "".join(f"{counts.get(n, 0):>11}" for n in names))
    return lines
