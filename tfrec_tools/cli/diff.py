"""`tfrec diff`: two builds compared; exit 0 identical, 1 different, 2 trouble (as diff(1))."""

from __future__ import annotations

import json

import click

EXIT_TROUBLE = 2  # diff(1): 1 means "different", so an error must not exit 1


class DiffTrouble(click.ClickException):
    """An error of `tfrec diff`: ``Error: ...``, exit 2, never mistaken for "different"."""

    exit_code = EXIT_TROUBLE


@click.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--deep", is_flag=True, help="Also read every record: ids added, removed, moved "
              "between folds, changed images and values (slower).")  # fmt: skip
@click.option("--name", help="The build to compare in folders holding several (e.g. train).")
@click.option("--json", "as_json", is_flag=True, help="Print every difference as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Examples printed per kind of difference (--json prints all).")  # fmt: skip
@click.pass_context
def diff_command(ctx, a, b, deep, name, as_json, limit) -> None:
    """Compare build A with build B (each a folder `tfrec build` wrote, or its manifest): the
    manifests' options, image settings, schema, classes, vocabularies, records per fold and
    class, and each shard's sha256; with --deep, the records by image_id. Exit 0 when
    identical, 1 when different, 2 on an error.

    Example: tfrec diff old_shards/ new_shards/ --deep
    """
    from tfrec_tools.cli import _one_line
    from tfrec_tools.errors import TfrecError
    from tfrec_tools.urls import check_url
    from tfrec_tools.validate.diff import diff_builds

    try:
        check_url(a, "A")
        check_url(b, "B")
        found = diff_builds(a, b, deep=deep, name=name)
    except TfrecError as err:
        raise DiffTrouble(str(err)) from err
    except (OSError, UnicodeError, MemoryError) as err:
        raise DiffTrouble(_one_line(err)) from err
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2, default=str))
    else:
        click.echo(render(found, limit=limit))
    ctx.exit(0 if found.identical else 1)


def render(found, *, limit: int) -> str:
    """The differences as text, up to ``limit`` examples per kind, then the verdict."""
    lines = [_header("A", found.a, found.manifests[0]), _header("B", found.b, found.manifests[1])]
    for section, changes in found.sections.items():
        if changes:
            count = len(changes)
            if section == "shards":
                total = max(len(m.shards) for m in found.manifests)
                lines.append(f"shards: {count} of {total} differ")
            else:
                lines.append(f"{section}: {count} change{'s' if count > 1 else ''}")
            items = [f"{key}: {_change(*pair)}" for key, pair in changes.items()]
            lines += _examples(items, limit)
    lines += _records(found, limit)
    return "\n".join(lines + [_verdict(found)])


def _header(label: str, path: str, manifest) -> str:
    records = sum(s.count for s in manifest.shards)
    folds = f", {manifest.folds} folds" if manifest.folds else ""
    return (
        f"{label}: {path} ({manifest.name}: {records} records, {len(manifest.shards)} shards"
        f"{folds}; tfrec-tools {manifest.tool_version})"
    )


def _records(found, limit: int) -> list[str]:
    records = found.records
    if records is None:
        if not found.shards_differ:
            return []
        return [
            "records: not compared: add --deep for the ids added, removed, moved between "
            "folds, and changed"
        ]
    kinds = {
        "added": records.added,
        "removed": records.removed,
        "moved": [f"{i} (fold {a} -> {b})" for i, (a, b) in records.moved.items()],
        "image changed": records.image_changed,
        "values changed": [
            f"{i} ({', '.join(f'{k}: {_change(*v)}' for k, v in c.items())})"
            for i, c in records.values_changed.items()
        ],
    }
    lines = ["records: " + ", ".join(f"{len(items)} {kind}" for kind, items in kinds.items())]
    for kind, items in kinds.items():
        if items:
            shown = ", ".join(items[:limit])
            more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
            lines.append(f"  {kind}: {shown}{more}")
    return lines


def _examples(items: list[str], limit: int) -> list[str]:
    more = [f"  ... and {len(items) - limit} more"] if len(items) > limit else []
    return [f"  {item}" for item in items[:limit]] + more


def _change(one, other) -> str:
    """``42 -> 7``; for two lists (classes, vocabularies) what was added and removed."""
    if isinstance(one, list) and isinstance(other, list):
        added = [x for x in other if x not in one]
        removed = [x for x in one if x not in other]
        if added or removed:
            parts = [f"+{_text(x)}" for x in added] + [f"-{_text(x)}" for x in removed]
            return " ".join(parts)
        return f"the same, in another order: {_text(one)} -> {_text(other)}"
    return f"{_text(one)} -> {_text(other)}"


def _text(value, width: int = 60) -> str:
    text = "(none)" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def _verdict(found) -> str:
    if found.identical:
        checked = "" if found.records is not None else " (manifests; --deep also compares records)"
        return "identical" + checked
    kinds = [s for s, changes in found.sections.items() if changes]
    kinds += ["records"] if found.records is not None and not found.records.identical else []
    return "different: " + ", ".join(kinds)
