"""The labels CSV: read it, resolve its columns, and encode labels (classes, values or tag
sets) and feature columns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from tfrec_tools.errors import ConfigError, DataError
from tfrec_tools.quiet import import_tensorflow
from tfrec_tools.schema import MISSING_CODE, ColumnSpec, LabelSpec, check_column_names

ID_CANDIDATES = ("image_id", "id", "image_name", "image", "filename", "file")
LABEL_CANDIDATES = ("label", "target")
TAG_CANDIDATES = (*LABEL_CANDIDATES, "tags")  # --multi-label: also Planet's column name
MISSING_TOKENS = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"})
FIRST_DATA_ROW = 2  # rows are numbered as a spreadsheet shows them: the header is row 1


@dataclass(frozen=True)
class Columns:
    """The CSV columns a build uses, resolved against the CSV's header."""

    id: str
    labels: tuple[str, ...]
    group: str | None
    features: tuple[str, ...]


def read_table(path: str) -> pd.DataFrame:
    """Every cell as a stripped string; nothing is parsed or dropped yet."""
    from tfrec_tools import fs

    if not fs.exists(path):
        raise DataError(f"{path}: labels CSV not found")
    try:
        opener = open if not fs.is_remote(path) else _gfile_open
        with opener(path, "rb") as handle:
            table = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read as CSV ({_first_line(err)})") from err
    table.columns = [str(c).strip() for c in table.columns]
    return table.apply(lambda col: col.str.strip())


def _gfile_open(path: str, mode: str):
    tf = import_tensorflow()

    return tf.io.gfile.GFile(path, mode)


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
    return value in MISSING_TOKENS


def _parses(values: list[str], kind: type) -> bool:
    try:
        for value in values:
            kind(value)
    except ValueError:
        return False
    return True


def label_spec(name: str, values: list[str]) -> LabelSpec:
    """Integers stay as they are (class i is value i); other numbers mean regression;
    strings become class indices in sorted order."""
    present = [v for v in values if not is_missing(v)]
    if present and _parses(present, int):
        numbers = sorted({int(v) for v in present})
        if numbers[0] < 0:
            raise DataError(
                f"label column {name!r} holds negative integers (e.g. {numbers[0]}); "
                "integer labels must be class indices >= 0: map them first or store them as text"
            )
        return LabelSpec(name, "classification", tuple(str(i) for i in range(numbers[-1] + 1)))
    if present and _parses(present, float):
        return LabelSpec(name, "regression")
    return LabelSpec(name, "classification", tuple(sorted(set(present))))


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
