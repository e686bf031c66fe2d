"""`tfrec lr-plot`: a thin shell over `tfrec_tools.train.schedules.plot_schedule`."""

from __future__ import annotations

import click

from tfrec_tools.cli.schedule_options import schedule_config, schedule_options

_POSITIVE = click.IntRange(min=1)


@click.command("lr-plot")
@click.option("--epochs", type=_POSITIVE, default=30, show_default=True)
@click.option("--batch-size", type=_POSITIVE, default=16, show_default=True, help="Per replica.")
@click.option("--replicas", type=_POSITIVE, default=1, show_default=True, help="TPU cores/GPUs.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@schedule_options
def lr_plot_command(epochs, batch_size, replicas, out, **schedule) -> None:
    """Plot a learning-rate schedule per epoch as a PNG, before spending TPU time on it.

    Example: tfrec lr-plot --lr-schedule cosine --replicas 8 --out lr.png
    """
    from tfrec_tools.train.schedules import peak_lr, plot_schedule

    config = schedule_config(schedule)
    global_batch = batch_size * replicas
    plot_schedule(config, epochs=epochs, global_batch=global_batch, path=out)
    click.echo(f"wrote {out}")
    click.echo(
        f"peak lr: {peak_lr(config, global_batch):.6g} = lr_max {config.lr_max:g} x global batch "
        f"{global_batch} ({batch_size} per replica x {replicas} replicas)"
    )
