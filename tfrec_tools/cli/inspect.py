"""`tfrec inspect`: a thin shell over `tfrec_tools.validate`."""

from __future__ import annotations

import json
import os

import click

from tfrec_tools.duplicates import DEFAULT_DISTANCE, MAX_DISTANCE


@click.command("inspect")
@click.argument("paths", nargs=-1)
@click.option("--deep", is_flag=True, help="Also decode every image (slower).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option("--grid", type=click.Path(dir_okay=False), help="Write a contact sheet PNG here.")
@click.option("--grid-count", type=click.IntRange(1, 400), default=16, show_default=True)
@click.option("--manifest", help="Manifest to check against [default: the one beside the shards].")
@click.option("--label-key", help="Label key [default: from the manifest, else target/label/...].")
@click.option("--id-key", help="Id key [default: image_id/image_name/id/...].")
@click.option("--group-key", help="Group key checked for leakage [default: patient_id/group/...].")
@click.option("--image-key", help="Image bytes key [default: image/image_raw/...].")
@click.option(
    "--duplicates",
    is_flag=True,
    help="Also find exact and near-duplicate images within each set, across its folds and "
    "between the sets given (train/ test/); copies across folds or sets are problems.",
)
@click.option(
    "--hamming",
    type=click.IntRange(0, MAX_DISTANCE),
    help=f"With --duplicates: the most bits two image hashes may differ by to count as near "
    f"duplicates [default: {DEFAULT_DISTANCE}].",
)
@click.pass_context
def inspect_command(
    ctx,
    paths,
    deep,
    as_json,
    grid,
    grid_count,
    manifest,
    label_key,
    id_key,
    group_key,
    image_key,
    duplicates,
    hamming,
) -> None:
    """Validate shards (files, folders or globs; local or gs://; default: the current folder).
    Each folder is checked set by set (train and test apart); files and globs together. Exit 0
    when all is well, 1 when a problem was found.

    Example: tfrec inspect shards/ --deep --grid sheet.png
    Example: tfrec inspect train/ test/ --duplicates
    """
    from tfrec_tools.validate import InspectConfig

    if hamming is not None and not duplicates:
        raise click.UsageError("--hamming sets the threshold of --duplicates: add --duplicates")

    config = InspectConfig(
        deep=deep,
        manifest=manifest,
        label_key=label_key,
        id_key=id_key,
        group_key=group_key,
        image_key=image_key,
    )
    groups = _shard_groups(paths or _here())
    if manifest and len(groups) > 1:
        raise click.UsageError("--manifest describes one shard set: name that set's shards")
    several = len(groups) > 1
    reports = [
        _inspect_one(
            files, config, grid=grid, grid_count=grid_count, several=several, text=not as_json
        )
        for files in groups
    ]
    check = None
    if duplicates:
        check = _duplicates(groups, DEFAULT_DISTANCE if hamming is None else hamming, as_json)
    if as_json:
        top = {"sets": reports} if len(reports) > 1 else reports[0]
        if check is not None:
            top["duplicates"] = check.to_json()
        click.echo(json.dumps(top, indent=2, default=str))
    duplicates_ok = check is None or not check.problems
    if len(reports) > 1 and not as_json:
        failed = sum(1 for r in reports if not r["ok"])
        verdict = "all OK" if not failed else f"{failed} FAILED"
        copies = "" if duplicates_ok else "; copies across folds or sets: FAILED"
        click.echo(f"{len(reports)} shard sets: {verdict}{copies}")
    ctx.exit(0 if all(r["ok"] for r in reports) and duplicates_ok else 1)


def _duplicates(groups, distance: int, as_json: bool):
    """Check the sets for copies (a progress bar while records are hashed), print the result."""
    from tqdm import tqdm

    from tfrec_tools.shard_files import resolve_files
    from tfrec_tools.validate.duplicates import ShardSet, check_duplicates

    sets, labels, passes = [], set(), set()
    for group in groups:
        files = tuple(resolve_files(group))
        fingerprint = _pass_fingerprint(files)
        if fingerprint and fingerprint in passes:  # another size of a checked pass
            continue
        passes.add(fingerprint)
        label = _set_label(files)
        label = label if label not in labels else f"{label}#{len(sets) + 1}"
        labels.add(label)
        sets.append(ShardSet(label, files))
    with tqdm(unit="img", desc="hashing", disable=None, leave=False) as bar:
        check = check_duplicates(sets, distance, bar.update)
    if not as_json:
        click.echo(f"duplicates (hamming <= {distance}): {check.summary}")
        for note in check.notes:
            click.echo(f"note: {note}")
        for problem in check.problems:
            click.echo(f"problem: {problem}")
        click.echo("duplicates: OK" if not check.problems else "duplicates: FAILED")
    return check


def _pass_fingerprint(files) -> str | None:
    """The plan shared by the builds of one pass of several sizes (``--size 256,384``): their
    records are the same images, so only one size is checked for copies. None otherwise."""
    from tfrec_tools.shard_files import load_manifest

    manifest = load_manifest(files)
    return manifest.plan_fingerprint if manifest and manifest.options.get("sizes") else None


def _here() -> tuple[str, ...]:
    """No PATHS: the current folder, or ./shards (where `tfrec build` writes) when the current
    folder holds no shard."""
    from tfrec_tools.builder.config import DEFAULT_OUT
    from tfrec_tools.shard_files import shard_sets

    if not shard_sets(".") and os.path.isdir(DEFAULT_OUT):
        return (DEFAULT_OUT,)
    return (".",)


def _shard_groups(paths: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The paths to inspect together: each folder alone, and each shard set of a folder that
    holds several alone; files and globs together, as given."""
    from tfrec_tools.shard_files import is_folder, shard_sets, size_folders
    from tfrec_tools.urls import check_url

    together, alone = [], []
    for path in paths:
        check_url(path, "paths")
        sets = shard_sets(path) if is_folder(path) else []
        if not sets and is_folder(path) and size_folders(path):  # a pass of several sizes
            alone += [s.files for size in size_folders(path) for s in shard_sets(size)]
        elif len(sets) > 1:
            alone += [s.files for s in sets]
        elif is_folder(path):
            alone.append((path,))
        else:
            together.append(path)
    return ([tuple(together)] if together else []) + alone


def _inspect_one(files, config, *, grid, grid_count: int, several: bool, text: bool) -> dict:
    """Inspect one group, write its contact sheet, print its text report (``text``); its JSON."""
    from tfrec_tools.contact_sheet import contact_sheet
    from tfrec_tools.validate import grid_tiles, inspect_shards

    report = inspect_shards(files, config)
    if grid:
        grid = _suffixed(grid, _set_label(files)) if several else grid
        _refuse_input(grid, [f.path for f in report.files] + [report.manifest_path])
        contact_sheet(grid_tiles(report, grid_count), grid)
    if text:
        click.echo(f"== {_set_label(files)} ==" if several else "", nl=several)
        click.echo(render(report))
        if grid:
            click.echo(f"contact sheet: {grid}")
        click.echo("" if several else "", nl=several)
    return {"set": _set_label(files), **report.to_json()} if several else report.to_json()


def _refuse_input(grid: str, inputs: list[str | None]) -> None:
    """Refuse a --grid that is one of the inspected files (as `cp` refuses a file onto itself)."""
    from tfrec_tools import fs
    from tfrec_tools.errors import ConfigError

    for path in filter(None, inputs):
        if fs.same_file(grid, path):
            raise ConfigError(
                f"--grid {grid} and the input {path} are the same file: choose another --grid"
            )


def _set_label(files) -> str:
    """The set's build name (``train``); ``256/train`` in a size folder of a pass of sizes."""
    from tfrec_tools import naming

    parsed = naming.parse_shard_name(files[0])
    name = parsed[0] if parsed else naming.base_name(files[0])
    folder = naming.base_name(naming.folder_name(files[0]))
    return f"{folder}/{name}" if parsed and naming.is_size_folder(folder) else name


def _suffixed(path: str, label: str) -> str:
    label = label.replace("/", "-")  # 256/train -> sheet-256-train.png
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-{label}.{ext}" if dot else f"{path}-{label}"


def render(report) -> str:
    """The report as text: files, schema, labels per fold, problems, verdict."""
    lines = _files(report) + [""] + _schema(report) + [""] + _folds(report)
    lines += [""] + [f"note: {n}" for n in report.notes]
    if report.problems:
        lines.append(f"problems ({len(report.problems)}):")
        lines += [f"  - {p}" for p in report.problems]
    lines.append("OK" if report.ok else f"FAILED: {len(report.problems)} problems")
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1]))


def _files(report) -> list[str]:
    total = report.name_total
    names = "names state no count" if total is None else f"names say {total}"
    count = len(report.files)
    head = f"{count} file{'s' if count > 1 else ''}, {report.records} records ({names})"
    lines = [head + (f"; manifest {report.manifest_path}" if report.manifest_path else "")]
    lines.append(f"  {'file':<32} {'name':>7} {'records':>8} {'bytes':>11}  fold")
    for f in report.files:
        name = "-" if f.name_count is None else str(f.name_count)
        folds = ",".join(map(str, f.folds)) or "-"
        base = f.path.rsplit("/", 1)[-1]
        lines.append(f"  {base:<32} {name:>7} {f.records:>8} {f.bytes:>11}  {folds}")
    return lines


def _schema(report) -> list[str]:
    used = {v: k for k, v in report.keys.items() if v}
    lines = [f"schema: {len(report.schema)} keys"]
    for key, spec in report.schema.items():
        role = f"[{used[key]}]" if key in used else ""
        lines.append(
            f"  {key:<20} {spec['kind']:<6} x{spec['length']:<3} {role:<8} {spec['example']}"
        )
    return lines


def _folds(report) -> list[str]:
    """Records per fold and class; for a multi-hot label, records holding each tag, and the
    records of the fold (a record holds any number of tags)."""
    table = report.fold_table()
    values = sorted({v for counts in table.values() for v in counts}, key=str)
    if not values:
        return ["labels: none found"]
    names = [str(report.class_names.get(_int(v), v)) for v in values]
    if report.multi_label:
        lines = [f"tags ({report.keys['label']}, multi-label) per fold, records holding each:"]
        totals, total = report.fold_records(), "records"
    else:
        lines = [f"labels ({report.keys['label']}) per fold:"]
        totals, total = {fold: sum(c.values()) for fold, c in table.items()}, "total"
    lines.append("  " + f"{'fold':<6}" + "".join(f"{n[:10]:>11}" for n in names) + f"{total:>9}")
    for fold, counts in table.items():
        cells = "".join(f"{counts.get(v, 0):>11}" for v in values)
        lines.append(f"  {fold:<6}{cells}{totals.get(fold, 0):>9}")
    return lines


def _int(value: str):
    try:
        return int(value)
    except ValueError:
        return value
