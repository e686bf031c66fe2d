"""CSV cells for people: a list opened in a spreadsheet must show text, not run formulas."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula


def text_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than runs it (``=cmd`` -> ``'=cmd``). For lists
    people open (rejected rows, duplicate groups); never for submissions, whose ids are data."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
