"""Fail when the docs drift from the code: every `tfrec build` option must be in docs/cli.md and
every rejection reason in docs/user-guide.md."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from tfrec_tools.cli import main
from tfrec_tools.cli.build import build_command

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Every `reason` a rejected row can carry, with the file that produces it.
REJECTION_REASONS = {
    "missing id": "tfrec_tools/builder/plan.py",  # _row_problem: empty id cell
    "missing label": "tfrec_tools/builder/plan.py",  # _row_problem
    "missing group": "tfrec_tools/builder/plan.py",  # _row_problem
    "duplicate id": "tfrec_tools/builder/plan.py",  # _matched_rows, _unlabeled_rows
    "duplicate image": "tfrec_tools/builder/plan.py",  # _matched_rows
    "ambiguous id": "tfrec_tools/builder/match.py",  # ImageIndex.match
    "missing file": "tfrec_tools/builder/match.py",  # ImageIndex.match
    "empty file": "tfrec_tools/builder/images.py",  # prepare_image
    "not an image": "tfrec_tools/builder/images.py",  # _open
    "image too large": "tfrec_tools/builder/images.py",  # _open, prepare_image
    "unreadable image": "tfrec_tools/builder/images.py",  # prepare_image
    "unreadable file": "tfrec_tools/builder/write.py",  # write_shard: OSError on read
}


def long_flag(option: click.Option) -> str:
    return max((o for o in option.opts if o.startswith("--")), key=len)


def mentions(text: str, flag: str) -> bool:
    """``--shards`` must appear on its own, not only as part of ``--shards-x``."""
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


BUILD_OPTIONS = [long_flag(p) for p in build_command.params if isinstance(p, click.Option)]
GLOBAL_OPTIONS = [long_flag(p) for p in main.params if isinstance(p, click.Option)]


@pytest.mark.parametrize("flag", BUILD_OPTIONS + GLOBAL_OPTIONS)
def test_every_option_is_in_the_cli_reference(flag):
    assert mentions((DOCS / "cli.md").read_text(encoding="utf-8"), flag), (
        f"{flag} is missing from docs/cli.md"
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
