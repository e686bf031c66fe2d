"""Fail when the docs drift from the code: every option of every `tfrec` command must be in its
section of docs/cli.md, and every rejection reason in docs/user-guide.md."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from tfrec_tools.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Every `reason` a rejected row can carry, with the file that produces it.
REJECTION_REASONS = {
    "missing id": "tfrec_tools/builder/rows.py",  # _row_problem: empty id cell
    "missing label": "tfrec_tools/builder/rows.py",  # _row_problem
    "missing group": "tfrec_tools/builder/rows.py",  # _row_problem
    "duplicate id": "tfrec_tools/builder/rows.py",  # _matched_rows, unlabeled_rows
    "duplicate image": "tfrec_tools/builder/rows.py",  # _matched_rows
    "no class": "tfrec_tools/builder/rows.py",  # folder_rows: a top-level image
    "unknown class": "tfrec_tools/builder/rows.py",  # folder_rows: a folder not in --vocab-from
    "unknown tag": "tfrec_tools/builder/rows.py",  # _known_tags: a tag not in --vocab-from
    "ambiguous id": "tfrec_tools/builder/match.py",  # ImageIndex.match
    "missing file": "tfrec_tools/builder/match.py",  # ImageIndex.match
    "empty file": "tfrec_tools/builder/images.py",  # prepare_image
    "not an image": "tfrec_tools/builder/images.py",  # _open
    "image too large": "tfrec_tools/builder/images.py",  # _open, prepare_image
    "unreadable image": "tfrec_tools/builder/images.py",  # prepare_image
    "unreadable file": "tfrec_tools/builder/write.py",  # write_shard: OSError on read
    "file too large": "tfrec_tools/builder/images.py",  # read_image: over the size cap
    "non-finite label": "tfrec_tools/builder/rows.py",  # inf in a label cell
    "not a regular file": "tfrec_tools/builder/walk.py",  # a FIFO, device or socket
    "file name not UTF-8": "tfrec_tools/builder/walk.py",
    "broken link": "tfrec_tools/builder/walk.py",
    "link loop": "tfrec_tools/builder/walk.py",
    "repeated folder": "tfrec_tools/builder/walk.py",  # reached twice through links
    "unreadable folder": "tfrec_tools/builder/walk.py",
}


def long_flag(option: click.Option) -> str:
    return max((o for o in option.opts if o.startswith("--")), key=len)


def mentions(text: str, flag: str) -> bool:
    """``--shards`` must appear on its own, not only as part of ``--shards-x``."""
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def command(name: str) -> click.Command:
    """A subcommand as `tfrec NAME` loads it (the group imports it lazily)."""
    found = main.get_command(click.Context(main), name)
    assert found is not None, f"tfrec_tools.cli.COMMANDS names {name!r}, which does not load"
    return found


def options(cmd: click.Command) -> list[str]:
    return [long_flag(p) for p in cmd.params if isinstance(p, click.Option)]


def cli_section(heading: str) -> str:
    """The text of the `## <heading>` section of docs/cli.md, up to the next `## ` heading."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    found = [s for s in sections if s.splitlines()[0].strip() == heading]
    assert found, f"docs/cli.md has no section '## {heading}'"
    return found[0]


COMMAND_OPTIONS = [(name, flag) for name in sorted(COMMANDS) for flag in options(command(name))]
GLOBAL_OPTIONS = options(main)


def test_every_command_is_loaded_and_documented():
    assert main.list_commands(click.Context(main)) == sorted(COMMANDS)
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"[`tfrec {name}`](#tfrec-{name})" in text, (
            f"`tfrec {name}` is missing from the command table of docs/cli.md"
        )
        cli_section(f"`tfrec {name}`")


@pytest.mark.parametrize("name, flag", COMMAND_OPTIONS)
def test_every_option_is_in_its_command_section(name, flag):
    assert mentions(cli_section(f"`tfrec {name}`"), flag), (
        f"{flag} of `tfrec {name}` is missing from its section of docs/cli.md"
    )


@pytest.mark.parametrize("flag", GLOBAL_OPTIONS)
def test_every_global_option_is_in_the_cli_reference(flag):
    assert mentions(cli_section("Global options"), flag), (
        f"{flag} is missing from the global options of docs/cli.md"
    )


@pytest.mark.parametrize("reason", sorted(REJECTION_REASONS))
def test_every_rejection_reason_is_in_the_user_guide(reason):
    # The list above must still match the code: a renamed reason fails here first.
    assert f'"{reason}"' in (ROOT / REJECTION_REASONS[reason]).read_text(encoding="utf-8"), (
        f"{reason!r} no longer occurs in {REJECTION_REASONS[reason]}; update REJECTION_REASONS"
    )
    assert f"`{reason}`" in (DOCS / "user-guide.md").read_text(encoding="utf-8"), (
        f"rejection reason {reason!r} is missing from docs/user-guide.md"
    )
