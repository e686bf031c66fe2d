"""BuildConfig: names that become file names, seeds, and the URL schemes the file access has."""

from __future__ import annotations

import pytest

from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.errors import ConfigError


@pytest.mark.parametrize(
    "name",
    [
        "train*",
        "te?t",
        "train[1]",
        "..",
        "a..b",
        ".hidden",
        "a/b",
        "a\\b",
        "a\nb",
        "a\x07b",
        "a" * 201,
    ],
)
def test_names_that_glob_hide_or_break_file_names_are_refused(name):
    with pytest.raises(ConfigError, match="`name` must be 1 to 200 bytes"):
        BuildConfig(images="images", name=name)


@pytest.mark.parametrize("name", ["train", "test_b", "my-set.v", "a" * 200])
def test_plain_names_are_accepted(name):
    assert BuildConfig(images="images", name=name).name == name


def test_a_negative_seed_is_refused():
    with pytest.raises(ConfigError, match=r"^`seed` must be >= 0\. Received: seed=-1$"):
        BuildConfig(images="images", seed=-1)


@pytest.mark.parametrize(
    "field, value",
    [("images", "foo://x"), ("out", "foo://x/shards"), ("labels_csv", "foo://x/l.csv")],
)
def test_an_unknown_url_scheme_is_refused_naming_the_supported_ones(field, value):
    args = {"images": "images", field: value}
    with pytest.raises(ConfigError) as caught:
        BuildConfig(**args)
    assert str(caught.value).startswith(
        f"unsupported URL scheme 'foo' in {field}={value!r}: use a local path or a URL of "
    )
    assert "gs://" in str(caught.value)


def test_gs_urls_are_accepted_without_touching_the_network():
    assert BuildConfig(images="gs://bucket/images", out="gs://bucket/shards").out.startswith("gs")


def test_parse_sizes_reads_a_comma_separated_list():
    from tfrec_tools.builder.config import parse_sizes

    assert parse_sizes("256") == ((256, 256),)
    assert parse_sizes("256, 384x512,512") == ((256, 256), (384, 512), (512, 512))
    with pytest.raises(ConfigError, match=r"`size` lists 256 twice. Received: '256,256'"):
        parse_sizes("256,256")


def test_sizes_of_a_pass_are_checked():
    from tfrec_tools.builder.config import ImageConfig

    image = ImageConfig(size=(32, 32))
    with pytest.raises(ConfigError, match=r"`sizes` must list 2 or more distinct sizes"):
        BuildConfig(images="images", image=image, sizes=((32, 32),))
    with pytest.raises(ConfigError, match=r"`image.size` must be one of `sizes`"):
        BuildConfig(images="images", image=image, sizes=((16, 16), (64, 64)))
    config = BuildConfig(images="images", out="out", image=image, sizes=((32, 32), (8, 16)))
    from tfrec_tools.builder.config import sized_configs

    sized = sized_configs(config)
    assert [(c.out, c.image.size, c.sizes) for c in sized] == [
        ("out/32", (32, 32), config.sizes),
        ("out/8x16", (8, 16), config.sizes),
    ]
    assert sized_configs(BuildConfig(images="images")) == (BuildConfig(images="images"),)
