"""The labels CSV: reading it strictly; label cells (missing, non-finite, the kind of a label);
multi-label cells: splitting tags, the tag vocabulary, multi-hot encoding."""

from __future__ import annotations

import pytest

from tfrec_tools.builder.table import (
    choose_label,
    is_missing,
    read_table,
    split_tags,
    tag_encoder,
    tag_spec,
    unknown_tags,
)
from tfrec_tools.errors import DataError
from tfrec_tools.schema import LabelSpec


@pytest.mark.parametrize(
    ("cell", "sep", "tags"),
    [
        ("haze primary", " ", ("haze", "primary")),
        ("  haze \t primary  water", " ", ("haze", "primary", "water")),
        ("", " ", ()),
        ("primary primary haze", " ", ("primary", "haze")),
        ("blow down;haze", ";", ("blow down", "haze")),
        ("a ; ;b;", ";", ("a", "b")),
        (";;", ";", ()),
        ("a|b", "|", ("a", "b")),
    ],
)
def test_split_tags(cell, sep, tags):
    assert split_tags(cell, sep) == tags


def test_tags_are_sorted_as_strings():
    spec = tag_spec("tags", ["water haze", "primary", ""])
    assert spec == LabelSpec("tags", "multilabel", ("haze", "primary", "water"))
    assert spec.dtype == "int64" and spec.shape == (3,)


def test_integer_tags_are_zero_to_max_with_gaps():
    spec = tag_spec("Target", ["16 0", "3", "03 5"])
    assert spec.classes == tuple(str(i) for i in range(17))
    encode = tag_encoder(spec)
    assert encode("03 16") == tuple(1 if i in (3, 16) else 0 for i in range(17))


def test_a_vocabulary_is_kept_as_given():
    spec = tag_spec("tags", ["x"], vocabulary=("b", "a"))
    assert spec.classes == ("b", "a")
    assert unknown_tags(spec, "a x y") == ["x", "y"]
    assert tag_encoder(spec)("a") == (0, 1)


def test_multi_hot_encoding_follows_the_vocabulary_and_the_separator():
    spec = tag_spec("tags", ["b;c", "a"], ";")
    encode = tag_encoder(spec, ";")
    assert encode("c;a") == (1, 0, 1)
    assert encode("") == (0, 0, 0)


def test_a_column_without_any_tag_is_an_error():
    with pytest.raises(DataError, match=r"label column 'tags' holds no tag in any row"):
        tag_spec("tags", ["", ""])
    assert tag_spec("tags", []).classes == ()  # no rows at all: the build says so later


# --- reading the CSV strictly ---------------------------------------------------------------


def read_text(tmp_path, text: str):
    path = tmp_path / "labels.csv"
    path.write_bytes(text.encode("utf-8"))
    return read_table(str(path))


def test_a_row_with_more_fields_than_the_header_is_an_error(tmp_path):
    # pandas would take the first column as the index and shift every id onto another label
    with pytest.raises(DataError) as err:
        read_text(tmp_path, "image_id,label\na,x\nb,y,extra\nc,z\n")
    assert str(err.value) == (
        f"{tmp_path / 'labels.csv'}: row 3 has 3 fields, the header 2: quote a cell that "
        'holds a comma ("a,b") or remove the extra fields'
    )


def test_a_row_with_fewer_fields_than_the_header_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"row 2 has 1 fields, the header 3: every row needs"):
        read_text(tmp_path, "image_id,label,site\na\n")


def test_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    # the header is row 1; a blank line is a row with nothing in it (skipped, still counted);
    # a quoted cell over several lines is one row, as a spreadsheet shows it
    text = 'image_id,label\na,x\n\nb," two\nlines "\n \nc,\n'
    table = read_text(tmp_path, text)
    assert table.index.tolist() == [2, 4, 6]
    assert table["image_id"].tolist() == ["a", "b", "c"]
    assert table["label"].tolist() == ["x", "two\nlines", ""]


def test_a_field_count_error_names_the_line_when_it_differs(tmp_path):
    with pytest.raises(DataError, match=r"row 3 \(line 4 of the file\) has 3 fields"):
        read_text(tmp_path, 'image_id,label\n"a\n",x\nb,y,z\n')


def test_a_duplicate_column_name_is_an_error(tmp_path):
    with pytest.raises(DataError) as err:
        read_text(tmp_path, "image_id,label,site, label\na,x,s,y\n")
    assert str(err.value) == (
        f"{tmp_path / 'labels.csv'}: column 'label' appears twice in the header (columns 2 and "
        "4); rename one of them"
    )


def test_cells_are_stripped_strings_and_a_bom_is_dropped(tmp_path):
    table = read_text(tmp_path, "\ufeffimage_id , label,\n 01 , NA,\n")
    assert list(table.columns) == ["image_id", "label", "Unnamed: 2"]
    assert table.loc[2].tolist() == ["01", "NA", ""]


def test_a_csv_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("image_id,label\ncafé,x\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"labels.csv: cannot read as CSV: not UTF-8 .*save it"):
        read_table(str(path))


# --- label cells ------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["", "nan", "NaN", "Nan", "NAN", "-nan", "NA", "null", "None"])
def test_every_nan_spelling_is_missing(cell):
    assert is_missing(cell)


def test_a_text_cell_named_like_a_token_is_not_missing():
    assert not is_missing("Nanny") and not is_missing("inf")


def choice(values, rows=None):
    return choose_label("label", values, rows or list(range(2, 2 + len(values))))


def test_integers_are_classes_and_say_so():
    made = choice(["0", "2", "", "1"])
    assert made.spec == LabelSpec("label", "classification", ("0", "1", "2"))
    assert made.note == "label 'label': integer classes 0..2 (every value is an integer)"
    assert made.warning == ""


def test_a_single_float_among_integers_makes_regression_with_a_warning():
    made = choice(["0", "1", "2.0", "1"])
    assert made.spec == LabelSpec("label", "regression")
    assert made.note == "label 'label': a regression target (row 4 holds '2.0', not an integer)"
    assert made.warning == (
        "label 'label' is a regression target only because of row 4 ('2.0'): every other value "
        "is an integer; if the labels are classes, fix that cell"
    )


def test_many_floats_make_regression_without_a_warning():
    made = choice(["0.5", "1", "2.5"])
    assert made.spec.kind == "regression" and made.warning == ""


def test_a_single_word_among_numbers_makes_text_classes_with_a_warning():
    made = choice(["0", "1", "two", "3"])
    assert made.spec.classes == ("0", "1", "3", "two")
    assert made.warning == (
        "label 'label' holds text classes only because of row 4 ('two'): every other value is "
        "a number; if the labels are numbers, fix that cell"
    )


def test_infinity_does_not_decide_the_kind_and_is_not_a_class():
    made = choice(["0", "inf", "1", "-Infinity"])
    assert made.spec == LabelSpec("label", "classification", ("0", "1"))
    assert made.unfit == {"inf", "-Infinity"} and not made.fits("inf") and made.fits("1")
    text = choice(["cat", "inf"])
    assert text.spec.classes == ("cat", "inf") and text.fits("inf")


def test_numbers_beyond_float32_are_not_finite_and_all_of_them_decide_nothing():
    made = choice(["0.5", "1e39", "-4e38", "2.5"])
    assert made.spec.kind == "regression" and made.unfit == {"1e39", "-4e38"}
    assert made.fits("3.4e38")
    nothing = choice(["inf", "", "-inf"])
    assert nothing.spec.kind == "regression" and nothing.unfit == {"inf", "-inf"}
    assert nothing.note == "label 'label': no finite value"


def test_integer_labels_far_beyond_their_count_are_refused_quickly():
    with pytest.raises(DataError) as err:
        choice(["0", "1", "10000000", "1"])
    assert str(err.value) == (
        "label 'label': row 4 holds 10000000, so integer labels (class indices) would make "
        "10,000,001 classes for 3 distinct values; prefix the labels with a letter (c10000000) "
        "to store them as text, one class per distinct value, or map them to 0..2"
    )
    with pytest.raises(DataError, match="1,000,000,000,001 classes"):
        choice(["1000000000000"])


def test_many_integer_classes_are_fine_when_most_occur():
    values = [str(i) for i in range(0, 200_000, 3)]  # GLDv2-like: sparse but not absurd
    assert choice(values).spec.num_classes == 199_999


def test_negative_integer_labels_name_their_row():
    with pytest.raises(DataError, match=r"row 3 holds -1; integer labels must be class indices"):
        choice(["0", "-1"])
