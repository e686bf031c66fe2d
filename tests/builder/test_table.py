"""Multi-label cells: splitting tags, the tag vocabulary, multi-hot encoding."""

from __future__ import annotations

import pytest

from tfrec_tools.builder.table import split_tags, tag_encoder, tag_spec, unknown_tags
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
