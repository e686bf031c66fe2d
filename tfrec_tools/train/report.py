"""The run report (``reports/YYYY-MM-DD_<description>.md``), its plots, and recommendations
drawn from what the run measured."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np

from tfrec_tools import __version__, fs
from tfrec_tools.read.augment import augment_name
from tfrec_tools.train.config import TrainConfig
from tfrec_tools.train.kfold import FoldResult, Plan
from tfrec_tools.train.metrics import main_metric
from tfrec_tools.train.outputs import Baseline, Scores
from tfrec_tools.train.registry import get_backbone

OVERFIT_RISE = 0.10  # val loss 10 % above its best at the end, while train loss kept falling
FOLD_SPREAD = 0.05  # main metric std across folds worth a warning


def write_report(
    plan: Plan, results: Sequence[FoldResult], scores: Scores, submission: str | None
) -> str:
    """Write the plots and the Markdown report; return the report's path."""
    config = plan.config
    report_dir = config.report_dir or fs.join(config.run_dir, "reports")
    fs.makedirs(report_dir)
    plots = _plots(plan, results)
    today = datetime.date.today().isoformat()
    path = fs.join(report_dir, f"{today}_{config.description}.md")
    sections = [
        _header(plan, today),
        _data(plan),
        _settings(plan),
        _results(plan, results, scores),
        _plot_section(plots, report_dir),
        _artifacts(plan, results, submission),
        _recommendations(plan, results, scores),
    ]
    fs.write_bytes_atomic(path, ("\n\n".join(sections) + "\n").encode("utf-8"))
    return path


def _header(plan: Plan, today: str) -> str:
    return (
        f"# Run report: {plan.config.description} ({today})\n\n"
        f"tfrec-tools {__version__} · run folder `{plan.config.run_dir}` · "
        f"device {plan.device.describe()}"
    )


def _data(plan: Plan) -> str:
    manifest, data = plan.data.manifest, plan.data
    if manifest is None:
        return f"## Data\n\n- training shards: {len(data.files)} files with no manifest (foreign)"
    lines = [
        "## Data",
        "",
        f"- training shards: {len(data.files)} files, "
        f"{manifest.totals['records']} records, {manifest.folds or 'no'} folds stored",
    ]
    if plan.test_files:
        lines.append(f"- test shards: {len(plan.test_files)} files")
    label = manifest.labels[0]
    if label.kind != "regression":
        lines += ["", *_label_table(manifest, label)]
    return "\n".join(lines)


def _label_table(manifest, label) -> list[str]:
    """Records per fold and class; for tags, the records holding each tag, then the records
    of the fold (an image holds any number of tags)."""
    tagged = label.kind == "multilabel"
    title = "holding each tag" if tagged else "and class"
    lines = [
        f"Records per fold {title} ({label.name}):",
        "",
        "| fold | " + " | ".join(label.classes) + (" | records |" if tagged else " | total |"),
        "|---" * (len(label.classes) + 2) + "|",
    ]
    for fold in sorted({s.fold for s in manifest.shards}, key=lambda f: (f is None, f)):
        shards = [s for s in manifest.shards if s.fold == fold]
        counts = [
            sum(s.label_histogram.get(label.name, {}).get(c, 0) for s in shards)
            for c in label.classes
        ]
        total = sum(s.count for s in shards) if tagged else sum(counts)
        lines.append(f"| {fold} | " + " | ".join(map(str, counts)) + f" | {total} |")
    return lines


def _settings(plan: Plan) -> str:
    c, batch = plan.config, plan.global_batch
    rows = [
        ("model", f"{c.model.name} (weights: {c.model.weights or 'none'}: {c.model.start})"),
        ("heads", ", ".join(map(_head_text, plan.data.heads))),
        ("image size", "x".join(map(str, plan.data.image_size))),
        (
            "batch",
            f"{c.batch_size} per replica x {plan.device.replicas} = {batch} "
            f"({_source(c, 'batch_size')})",
        ),
        ("epochs", f"{c.epochs} (early stopping patience: {c.patience or 'off'})"),
        ("frozen backbone", _frozen(c)),
        ("steps per execution", str(c.steps_per_execution)),
        (
            "schedule",
            f"{c.schedule.kind} ({_source(c, 'schedule.kind')}), {c.schedule.warmup_epochs} "
            f"warmup epochs ({_source(c, 'schedule.warmup_epochs')})",
        ),
        (
            "peak lr",
            f"{c.schedule.lr_max * batch:.3g} = lr_max {c.schedule.lr_max:g} per sample x {batch} "
            f"({_source(c, 'schedule.lr_max')})",
        ),
        ("augmentation", f"{augment_name(c.augment)}, " + _WHERE[c.augment_on]),
        ("TTA", f"{c.tta} passes" + (" (no augmentation)" if c.tta == 1 else "")),
        ("monitor", f"{plan.monitor[0]} ({plan.monitor[1]})"),
        (
            "seed",
            f"{c.seed}, deterministic ops: {c.deterministic}, mixed precision: {c.mixed_precision}",
        ),
    ]
    return "## Model and settings\n\n| setting | value |\n|---|---|\n" + "\n".join(
        f"| {k} | {v} |" for k, v in rows
    )


_WHERE = {"host": "on the host", "model": "in the model"}


def _head_text(head) -> str:
    if head.kind == "multilabel":
        return f"{head.name} (multilabel, {head.num_classes} tags, threshold {head.threshold:g})"
    return f"{head.name} ({head.kind})"


def _frozen(config: TrainConfig) -> str:
    """--freeze-epochs: how long the backbone was frozen, and what its BatchNorm did after."""
    if not config.freeze_epochs:
        return "no"
    after = "frozen" if config.model.start == "fine-tune" else "trained (random weights)"
    n = config.freeze_epochs
    span = "epoch 1" if n == 1 else f"epochs 1-{n}"
    return f"{span}, then fine-tuned; BatchNorm after that: {after}"


def _source(config: TrainConfig, setting: str) -> str:
    """Where a setting came from: "model default (scratch)", "--lr-max", ..."""
    return config.sources.get(setting, "given")


def _results(plan: Plan, results: Sequence[FoldResult], scores: Scores) -> str:
    columns = [(h.name, m) for h in plan.data.heads for m in scores.overall[h.name]]
    head = "| fold | best epoch | epochs run | " + " | ".join(f"{h} {m}" for h, m in columns)
    lines = ["## Out-of-fold results", "", head + " |", "|---" * (3 + len(columns)) + "|"]
    for r in results:
        values = " | ".join(f"{scores.per_fold[r.fold][h][m]:.4f}" for h, m in columns)
        lines.append(f"| {r.fold} | {r.best_epoch + 1} | {r.epochs_run} | {values} |")
    overall = " | ".join(f"**{scores.overall[h][m]:.4f}**" for h, m in columns)
    lines.append(f"| overall | | | {overall} |")
    return "\n".join(lines)


def _plots(plan: Plan, results: Sequence[FoldResult]) -> dict[str, str]:
    from tfrec_tools.train.plots import plot_curves
    from tfrec_tools.train.schedules import plot_schedule

    run_dir, config = plan.config.run_dir, plan.config
    lr_path, curves_path = fs.join(run_dir, "lr.png"), fs.join(run_dir, "curves.png")
    recorded = results[0].history.get("learning_rate") if results else None
    plot_schedule(
        config.schedule,
        epochs=config.epochs,
        global_batch=plan.global_batch,
        path=lr_path,
        history_lr=recorded,
    )
    plot_curves([(r.fold, r.history) for r in results], plan.monitor[0], curves_path)
    return {"Learning-rate schedule": lr_path, "Learning curves per fold": curves_path}


def _plot_section(plots: dict[str, str], report_dir: str) -> str:
    import os

    lines = ["## Plots", ""]
    for title, path in plots.items():
        rel = path if fs.is_remote(path) else os.path.relpath(path, report_dir)
        lines.append(f"![{title}]({rel})")
    return "\n".join(lines)


def _artifacts(plan: Plan, results: Sequence[FoldResult], submission: str | None) -> str:
    run_dir = plan.config.run_dir
    names = ["oof.csv", "metrics.json", "history.csv", "config.json"]
    names += [f"fold-{r.fold}.weights.h5" for r in results]
    if submission:
        names += ["submission.csv", "fold_weights.json"]
    return "## Artifacts\n\n" + "\n".join(f"- `{fs.join(run_dir, n)}`" for n in names)


def _recommendations(plan: Plan, results: Sequence[FoldResult], scores: Scores) -> str:
    advice = recommendations(plan, results, scores)
    return "## Recommendations\n\n" + "\n".join(
        f"- {a}" for a in advice or ["none: the run looks healthy"]
    )


def recommendations(plan: Plan, results: Sequence[FoldResult], scores: Scores) -> list[str]:
    """Advice drawn from the curves and scores of this run; a run that did not learn first."""
    advice = learning_warnings(plan.config, results, scores)
    overfit = [r.fold for r in results if _overfits(r.history)]
    if overfit:
        advice.append(
            f"folds {', '.join(map(str, overfit))}: validation loss rose more than "
            f"{OVERFIT_RISE:.0%} above its best while training loss kept falling (over-fitting): "
            "stronger --augment, --patience for early stopping, or fewer --epochs"
        )
    late = [r.fold for r in results if r.best_epoch == r.epochs_run - 1]
    if results and len(late) * 2 > len(results):
        advice.append(
            "the best epoch was the last one in most folds: the model was still "
            "improving; try more --epochs"
        )
    head = plan.data.heads[0]
    name, _ = main_metric(head)
    per_fold = [scores.per_fold[r.fold][head.name][name] for r in results]
    if len(per_fold) > 1 and np.nanstd(per_fold) > FOLD_SPREAD:
        advice.append(
            f"{name} varies across folds (std {np.nanstd(per_fold):.3f}): check fold "
            "balance with `tfrec inspect` and consider more epochs or data"
        )
    if plan.config.tta == 1:
        advice.append("predictions used no test-time augmentation: try --tta 5 or more")
    if plan.device.kind == "CPU" and plan.config.model.name != "small_cnn":
        advice.append("a large backbone on CPU is slow: use a GPU or a Kaggle/Colab TPU")
    return advice


def _overfits(history: dict[str, list[float]]) -> bool:
    val, train = history.get("val_loss", []), history.get("loss", [])
    if len(val) < 3:
        return False
    best = int(np.argmin(val))
    return val[-1] > min(val) * (1 + OVERFIT_RISE) and train[-1] < train[best]


def learning_warnings(
    config: TrainConfig, results: Sequence[FoldResult], scores: Scores
) -> list[str]:
    """One message per head whose OOF main metric is no better than a trivial predictor's
    (``Baseline.learned``), saying what to change, with the numbers: the learning rate, the
    epochs, the weights. Empty when every head learned."""
    return [
        f"{name}: the model did not learn: {_shortfall(b)}. {_changes(config, results)}"
        for name, b in scores.baselines.items()
        if not b.learned
    ]


def _shortfall(b: Baseline) -> str:
    if b.metric == "rmse":
        return f"OOF rmse {b.value:.4g} is no lower than {b.predictor} ({b.trivial:.4g})"
    return (
        f"OOF {b.metric} {b.value:.4f} is no better than {b.predictor} "
        f"({b.trivial:.4f}, + {b.margin:.4f} for chance)"
    )


def _changes(config: TrainConfig, results: Sequence[FoldResult]) -> str:
    """What to try next: a higher peak learning rate, more epochs, pretrained weights."""
    lr_max, model = config.schedule.lr_max, config.model
    default = model.training_defaults().lr_max
    higher = default if lr_max < default else 3 * lr_max
    peaks = [max(r.history["learning_rate"]) for r in results if r.history.get("learning_rate")]
    peak = f", a peak of {max(peaks):.3g}" if peaks else ""
    source = _source(config, "schedule.lr_max")
    steps = [
        f"raise the learning rate: --lr-max {higher:g} (this run: {lr_max:g} per sample{peak}, "
        f"from {source})",
        f"train longer: --epochs {2 * config.epochs} (this run: {config.epochs})",
    ]
    if model.weights is None:
        steps.append(
            "start from pretrained weights: --weights imagenet"
            if get_backbone(model.name).pretrained
            else "start from pretrained weights: e.g. --model efficientnet_b0 --weights imagenet"
        )
    return "Try: " + "; ".join(steps) + ". If nothing helps, check the labels against the images"
