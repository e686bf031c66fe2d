"""`tfrec lr-plot`: a thin shell over `tfrec_tools.train.schedules.plot_schedule`."""

from __future__ import annotations

import click

from tfrec_tools.train.schedules import SCHEDULES, ScheduleConfig

_DEFAULT = ScheduleConfig()
_NON_NEGATIVE = click.FloatRange(min=0)
_FRACTION = click.FloatRange(0, 1, min_open=True)  # (0, 1]
_OPEN_FRACTION = click.FloatRange(0, 1, min_open=True, max_open=True)  # (0, 1)
_COUNT = click.IntRange(min=0)
_POSITIVE = click.IntRange(min=1)


@click.command("lr-plot")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=_DEFAULT.kind, show_default=True)
@click.option("--epochs", type=_POSITIVE, default=30, show_default=True)
@click.option("--batch-size", type=_POSITIVE, default=16, show_default=True, help="Per replica.")
@click.option("--replicas", type=_POSITIVE, default=1, show_default=True, help="TPU cores/GPUs.")
@click.option("--lr-start", type=_NON_NEGATIVE, default=_DEFAULT.lr_start, show_default=True)
@click.option(
    "--lr-max",
    type=click.FloatRange(min=0, min_open=True),
    default=_DEFAULT.lr_max,
    show_default=True,
    help="Per sample of the global batch: the peak is this x batch size x replicas.",
)
@click.option("--lr-min", type=_NON_NEGATIVE, default=_DEFAULT.lr_min, show_default=True)
@click.option("--warmup-epochs", type=_COUNT, default=_DEFAULT.warmup_epochs, show_default=True)
@click.option("--sustain-epochs", type=_COUNT, default=_DEFAULT.sustain_epochs, show_default=True)
@click.option(
    "--decay",
    type=_FRACTION,
    default=_DEFAULT.decay,
    show_default=True,
    help="Factor per epoch (warmup-exp, exp-decay).",
)
@click.option(
    "--plateau-factor", type=_OPEN_FRACTION, default=_DEFAULT.plateau_factor, show_default=True
)
@click.option(
    "--plateau-patience", type=_COUNT, default=_DEFAULT.plateau_patience, show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
def lr_plot_command(
    schedule,
    epochs,
    batch_size,
    replicas,
    lr_start,
    lr_max,
    lr_min,
    warmup_epochs,
    sustain_epochs,
    decay,
    plateau_factor,
    plateau_patience,
    out,
) -> None:
    """Plot a learning-rate schedule per epoch as a PNG, before spending TPU time on it.

    Example: tfrec lr-plot --schedule cosine --replicas 8 --out lr.png
    """
    from tfrec_tools.train.schedules import peak_lr, plot_schedule

    config = ScheduleConfig(
        kind=schedule,
        lr_start=lr_start,
        lr_max=lr_max,
        lr_min=lr_min,
        warmup_epochs=warmup_epochs,
        sustain_epochs=sustain_epochs,
        decay=decay,
        plateau_factor=plateau_factor,
        plateau_patience=plateau_patience,
    )
    global_batch = batch_size * replicas
    plot_schedule(config, epochs=epochs, global_batch=global_batch, path=out)
    click.echo(f"wrote {out}")
    click.echo(
        f"peak lr: {peak_lr(config, global_batch):.6g} = lr_max {lr_max:g} x global batch "
        f"{global_batch} ({batch_size} per replica x {replicas} replicas)"
    )
