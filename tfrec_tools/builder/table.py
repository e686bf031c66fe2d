"""The labels CSV: read it, resolve its columns, and encode labels (classes, values or tag
sets) and feature columns."""

from __future__ import annotations

import csv
import gc
import io
import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import product

import pandas as pd

from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.schema import MISSING_CODE, ColumnSpec, LabelSpec, check_column_names

ID_CANDIDATES = ("image_id", "id", "image_name", "image", "filename", "file")
LABEL_CANDIDATES = ("label", "target")
TAG_CANDIDATES = (*LABEL_CANDIDATES, "tags")  # --multi-label: also Planet's column name
NAN_SPELLINGS = {sign + "".join(n) for sign in ("", "+", "-") for n in product("nN", "aA", "nN")}
MISSING_TOKENS = frozenset({"", "NA", "N/A", "null", "NULL", "None", *NAN_SPELLINGS})
# Integer labels are class indices 0..max. Above this many classes, most of which (all but one
# in SPARSE_CLASSES) no row holds, they are ids, not indices: a label of 10,000,000 would
# allocate ten million classes (GLDv2's 203,094 landmark classes, 81,313 seen, stay allowed).
MAX_INTEGER_CLASSES = 100_000
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32: a stored label's type
SPARSE_CLASSES = 10


@dataclass(frozen=True)
class Columns:
    """The CSV columns a build uses, resolved against the CSV's header."""

    id: str
    labels: tuple[str, ...]
    group: str | None
    features: tuple[str, ...]


def read_table(path: str) -> pd.DataFrame:
    """Every cell as a stripped string, indexed by spreadsheet row number: the header is row
    1, a blank line is a row holding nothing (skipped, still counted), a quoted cell over
    several lines is one row. Nothing is parsed yet.

    Raises:
        DataError: the file is missing or not UTF-8 CSV, a row has another field count than the
            header (pandas would shift every id onto the next column), or two header cells
            name the same column.
    """
    from tfrec_tools import fs

    if not fs.exists(path):
        raise DataError(f"{path}: labels CSV not found")
    with _gc_paused():  # the row lists die inside, so the collector never sees them
        return _table(path)


def _table(path: str) -> pd.DataFrame:
    try:
        with _open_text(path) as handle:
            records = list(csv.reader(handle))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: cannot read as CSV: not UTF-8 ({err}); save it as UTF-8") from err
    except csv.Error as err:
        raise DataError(f"{path}: cannot read as CSV ({_first_line(err)})") from err
    start = next((i for i, record in enumerate(records) if not _is_blank(record)), None)
    if start is None:
        raise DataError(f"{path}: cannot read as CSV (the file is empty: no header)")
    columns = _column_names(records[start], path)
    numbers, body = _numbered(records, start, path)
    cells = zip(*body) if body else [() for _ in columns]
    data = {name: list(map(str.strip, column)) for name, column in zip(columns, cells)}
    return pd.DataFrame(data, index=numbers, columns=columns, dtype=object)


def _open_text(path: str):
    """The CSV as text, a UTF-8 byte order mark dropped, newlines left to the csv module."""
    from tfrec_tools import fs

    if fs.is_remote(path):
        return io.StringIO(fs.read_bytes(path).decode("utf-8-sig"), newline="")
    return open(path, encoding="utf-8-sig", newline="")


@contextmanager
def _gc_paused():
    """Without the cyclic garbage collector: a million row lists would set it off again and
    again, each time rescanning every list so far (it doubles the time of a 1M-row CSV)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _numbered(records: list[list[str]], header: int, path: str) -> tuple[pd.Index, list]:
    """The row numbers and the fields of the rows after ``records[header]`` that are not
    blank (row i + 1 is ``records[i]``)."""
    width, body = len(records[header]), records[header + 1 :]
    first = header + 2
    if set(map(len, body)) <= {width}:  # no blank line, no odd row: the common case
        return pd.RangeIndex(first, first + len(body), name="row"), body
    numbers, kept = [], []
    line = 1 + sum(1 + _newlines(record) for record in records[: header + 1])
    for number, record in enumerate(body, first):
        if len(record) == width:
            numbers.append(number)
            kept.append(record)
        elif not _is_blank(record):
            raise DataError(_field_count(path, number, line, len(record), width))
        line += 1 + _newlines(record)  # a quoted cell over several lines moves lines, not rows
    return pd.Index(numbers, dtype="int64", name="row"), kept


def _newlines(record: list[str]) -> int:
    return sum(cell.count("\n") for cell in record)


def _is_blank(record: list[str]) -> bool:
    return not any(cell.strip() for cell in record)


def _field_count(path: str, row: int, line: int, fields: int, width: int) -> str:
    where = f"row {row}" + (f" (line {line} of the file)" if line != row else "")
    fix = (
        'quote a cell that holds a comma ("a,b") or remove the extra fields'
        if fields > width
        else "every row needs one field per column (leave a cell empty, not out)"
    )
    return f"{path}: {where} has {fields} fields, the header {width}: {fix}"


def _column_names(header: list[str], path: str) -> list[str]:
    """The stripped header cells (a blank one: ``Unnamed: i``, as pandas names it).

    Raises:
        DataError: two cells name the same column (pandas would rename one ``label.1``).
    """
    names = [cell.strip() or f"Unnamed: {i}" for i, cell in enumerate(header)]
    first: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        if name in first:
            raise DataError(
                f"{path}: column {name!r} appears twice in the header (columns {first[name]} "
                f"and {position}); rename one of them"
            )
        first[name] = position
    return names


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def resolve_columns(
    table: pd.DataFrame,
    path: str,
    *,
    id_col: str | None,
    label_cols: tuple[str, ...] | None,
    group_col: str | None,
    feature_cols: tuple[str, ...],
    label_candidates: tuple[str, ...] = LABEL_CANDIDATES,
) -> Columns:
    """Check that every named column exists; fill in defaults for id and label columns (the
    label: the first of ``label_candidates`` the CSV has, else none)."""
    have = list(table.columns)

    def need(column: str, option: str) -> str:
        if column not in have:
            raise DataError(
                f"{path}: no column {column!r} ({option}); the CSV has: {', '.join(have)}"
            )
        return column

    if id_col is None:
        found = [c for c in ID_CANDIDATES if c in have]
        if not found:
            raise DataError(
                f"{path}: no id column found (tried {', '.join(ID_CANDIDATES)}); pass --id-col; "
                f"the CSV has: {', '.join(have)}"
            )
        id_col = found[0]
    if label_cols is None:
        label_cols = tuple(c for c in label_candidates if c in have)[:1]
    columns = Columns(
        id=need(id_col, "--id-col"),
        labels=tuple(need(c, "--label-col") for c in label_cols),
        group=need(group_col, "--group-col") if group_col else None,
        features=tuple(need(c, "--feature-col") for c in feature_cols),
    )
    check_column_names(columns.labels + columns.features)
    if columns.id in columns.labels + columns.features:
        raise ConfigError(f"column {columns.id!r} cannot be both the id and a label/feature")
    return columns


def is_missing(value: str) -> bool:
    """An empty cell, a missing-value token, or any spelling of NaN (``Nan``, ``-NAN``)."""
    return value in MISSING_TOKENS


def _parses(values: list[str], kind: type) -> bool:
    try:
        for value in values:
            kind(value)
    except ValueError:
        return False
    return True


def _misfits(cells: list[tuple[int, str]], kind: type) -> list[tuple[int, str]]:
    """The first two (row, value) cells that ``kind`` cannot parse (two tell one from many)."""
    found = []
    for row, value in cells:
        try:
            kind(value)
        except ValueError:
            found.append((row, value))
            if len(found) == 2:
                break
    return found


def _not_numbers(cells: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], frozenset[str]]:
    """The first two cells that are not numbers, and the values that are numbers no float32
    holds (``inf``, ``nan`` spelled otherwise, ``1e39``): labels are stored as float32."""
    words, infinite = [], set()
    for row, value in cells:
        try:
            if not abs(float(value)) <= FLOAT32_MAX:
                infinite.add(value)
        except ValueError:
            words.append((row, value))
            if len(words) == 2:
                break
    return words, frozenset(infinite)


@dataclass(frozen=True)
class LabelChoice:
    """A label column's kind, and the cell that decided it."""

    spec: LabelSpec
    note: str  # the kind and which cell decided it, in words
    warning: str = ""  # set when that one cell alone decided it
    unfit: frozenset[str] = frozenset()  # non-finite numbers (inf): no class, no target

    def fits(self, value: str) -> bool:
        return value not in self.unfit


def choose_label(name: str, values: list[str], rows: Sequence[int]) -> LabelChoice:
    """The kind of a label column (``rows``: the spreadsheet row of each value). Integers
    are class indices (class i is value i); other numbers mean regression; anything else
    makes every distinct value a class, sorted as strings. Missing cells do not count, nor
    do non-finite numbers (``inf``) among numbers: their rows are rejected (``fits``).

    Raises:
        DataError: integers below 0, or so far apart that they are ids, not class indices
            (over MAX_INTEGER_CLASSES classes, fewer than 1 in SPARSE_CLASSES held by a row).
    """
    present = [(row, value) for row, value in zip(rows, values) if value not in MISSING_TOKENS]
    if present and not _misfits(present, int):
        return _integer_classes(name, present)
    words, infinite = _not_numbers(present)
    if words or not present:
        spec = LabelSpec(name, "classification", tuple(sorted({v for _, v in present})))
        return _decided(spec, words, len(present), "text classes", "a number")
    finite = [cell for cell in present if cell[1] not in infinite] if infinite else present
    if not finite:  # every value inf: every row is rejected, there is nothing to learn from
        choice = LabelChoice(LabelSpec(name, "regression"), f"label {name!r}: no finite value")
        return replace(choice, unfit=infinite)
    fractions = _misfits(finite, int)
    if not fractions:
        return replace(_integer_classes(name, finite), unfit=infinite)
    spec = LabelSpec(name, "regression")
    choice = _decided(spec, fractions, len(finite), "a regression target", "an integer")
    return replace(choice, unfit=infinite)


def _decided(
    spec: LabelSpec, misfits: list[tuple[int, str]], count: int, kind: str, other: str
) -> LabelChoice:
    """The choice of ``spec``, decided by the ``misfits`` (cells that are not ``other``)
    among ``count`` values; a warning when a single cell did."""
    if not misfits:
        return LabelChoice(spec, f"label {spec.name!r}: {kind} (no value)")
    row, value = misfits[0]
    note = f"label {spec.name!r}: {kind} (row {row} holds {value!r}, not {other})"
    if len(misfits) > 1 or count < 2:
        return LabelChoice(spec, note)
    verb, wanted = ("is", "classes") if spec.kind == "regression" else ("holds", "numbers")
    warning = (
        f"label {spec.name!r} {verb} {kind} only because of row {row} ({value!r}): every other "
        f"value is {other}; if the labels are {wanted}, fix that cell"
    )
    return LabelChoice(spec, note, warning)


def _integer_classes(name: str, cells: list[tuple[int, str]]) -> LabelChoice:
    distinct = {int(value) for _, value in cells}
    low, high = min(distinct), max(distinct)
    if low < 0:
        raise DataError(
            f"label {name!r}: row {_row_of(cells, low)} holds {low}; integer labels must be "
            "class indices >= 0: map them first or store them as text"
        )
    if high >= MAX_INTEGER_CLASSES and high + 1 > SPARSE_CLASSES * len(distinct):
        raise DataError(
            f"label {name!r}: row {_row_of(cells, high)} holds {high}, so integer labels (class "
            f"indices) would make {high + 1:,} classes for {len(distinct):,} distinct values; "
            f"prefix the labels with a letter (c{high}) to store them as text, one class per "
            f"distinct value, or map them to 0..{len(distinct) - 1}"
        )
    spec = LabelSpec(name, "classification", tuple(str(i) for i in range(high + 1)))
    return LabelChoice(
        spec, f"label {name!r}: integer classes 0..{high} (every value is an integer)"
    )


def _row_of(cells: list[tuple[int, str]], number: int) -> int:
    return next(row for row, value in cells if int(value) == number)


def label_encoder(spec: LabelSpec) -> Callable[[str], int | float]:
    """value -> stored label: the float itself, or the class index (``'03'`` is class 3)."""
    if spec.kind == "regression":
        return float
    index = {name: i for i, name in enumerate(spec.classes)}
    return lambda value: index[value] if value in index else index[str(int(value))]


def split_tags(cell: str, sep: str = " ") -> tuple[str, ...]:
    """The distinct tags of a multi-label cell, in order: ``"haze  primary"`` -> ``("haze",
    "primary")``. The separator ``" "`` splits on any run of whitespace; another separator
    splits on itself, and the pieces are stripped. Empty pieces are dropped, so an empty
    cell, or one holding only separators, is the empty set."""
    pieces = cell.split() if sep == " " else (p.strip() for p in cell.split(sep))
    return tuple(dict.fromkeys(p for p in pieces if p))


def _is_index(tag: str) -> bool:
    return tag.isascii() and tag.isdigit()


def tag_spec(
    name: str, cells: list[str], sep: str = " ", vocabulary: tuple[str, ...] = ()
) -> LabelSpec:
    """A multi-label column: its tags are ``vocabulary`` when given (an earlier build's, so
    train and test codes agree), else those of ``cells``: 0..max when every tag is a
    non-negative integer (tag i is position i, gaps included, as for integer classes; ``03``
    is tag 3), else the distinct tags sorted as strings.

    Raises:
        DataError: there are cells, and none holds a tag.
    """
    if vocabulary:
        return LabelSpec(name, "multilabel", tuple(vocabulary))
    tags = {tag for cell in cells for tag in split_tags(cell, sep)}
    if cells and not tags:
        raise DataError(
            f"label column {name!r} holds no tag in any row (--multi-label, separator "
            f"{sep!r}): check --label-col and --label-sep"
        )
    if tags and all(map(_is_index, tags)):
        return LabelSpec(name, "multilabel", tuple(map(str, range(max(map(int, tags)) + 1))))
    return LabelSpec(name, "multilabel", tuple(sorted(tags)))


def _tag_index(spec: LabelSpec) -> Callable[[str], int | None]:
    """tag -> its position in ``spec.classes`` (``03`` finds ``3``), None when absent."""
    index = {tag: i for i, tag in enumerate(spec.classes)}

    def find(tag: str) -> int | None:
        if tag in index:
            return index[tag]
        return index.get(str(int(tag))) if _is_index(tag) else None

    return find


def unknown_tags(spec: LabelSpec, cell: str, sep: str = " ") -> list[str]:
    """The tags of ``cell`` that ``spec`` does not have (possible with --vocab-from)."""
    find = _tag_index(spec)
    return [tag for tag in split_tags(cell, sep) if find(tag) is None]


def tag_encoder(spec: LabelSpec, sep: str = " ") -> Callable[[str], tuple[int, ...]]:
    """cell -> the multi-hot vector over ``spec.classes``, a tuple of 0/1; every tag of the
    cell must be one of them (``unknown_tags`` finds those that are not)."""
    find = _tag_index(spec)

    def encode(cell: str) -> tuple[int, ...]:
        hot = [0] * spec.num_classes
        for tag in split_tags(cell, sep):
            hot[find(tag)] = 1
        return tuple(hot)

    return encode


def column_spec(name: str, values: list[str], vocabulary: tuple[str, ...] = ()) -> ColumnSpec:
    """Numbers become a float feature (missing: NaN); anything else integer codes over the
    sorted vocabulary (missing: -1). A given ``vocabulary`` (an earlier build's, so train and
    test codes agree) is kept as it is; values outside it count as missing."""
    present = [v for v in values if not is_missing(v)]
    missing = len(values) - len(present)
    if vocabulary:
        unknown = sum(1 for v in present if v not in set(vocabulary))
        return ColumnSpec(name, "categorical", tuple(vocabulary), missing + unknown)
    if _parses(present, float):
        return ColumnSpec(name, "numeric", missing=missing)
    return ColumnSpec(name, "categorical", tuple(sorted(set(present))), missing)


def feature_encoder(spec: ColumnSpec) -> Callable[[str], int | float]:
    """value -> stored feature: a float (NaN when missing) or a vocabulary code (-1)."""
    if spec.kind == "numeric":
        return lambda value: math.nan if is_missing(value) else float(value)
    index = {name: i for i, name in enumerate(spec.vocabulary)}
    return lambda value: index.get(value, MISSING_CODE)
