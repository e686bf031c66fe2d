"""Walking the image folder: special files, names that are not UTF-8 and symbolic links are
skipped or followed by one policy, and every skipped file reaches the rejected rows."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.helpers import write_csv
from tfrec_tools.builder.config import BuildConfig
from tfrec_tools.builder.run import plan_build
from tfrec_tools.builder.walk import walk_images

LATIN1_NAME = os.fsdecode(b"caf\xe9.jpg")  # a name whose bytes are not UTF-8


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"placeholder")
    return path


def reasons(walk) -> dict[str, str]:
    return {s.rel: s.reason for s in walk.skipped}


def plan_rejections(images: Path, **options) -> dict:
    """(row, path under images) -> reason of every row the plan rejects."""
    options.setdefault("shards", 1)
    plan = plan_build(BuildConfig(images=str(images), out=str(images.parent / "o"), **options))
    return {(r.row, os.path.relpath(r.path, images)): r.reason for r in plan.rejected}


@pytest.fixture
def special(tmp_path) -> Path:
    """A flat folder: one image and, named like images, a FIFO, a socket, a link to a device."""
    images = tmp_path / "images"
    touch(images / "a.jpg")
    os.mkfifo(images / "fifo.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(images / "sock.jpg"))
    sock.close()
    (images / "zero.jpg").symlink_to("/dev/zero")
    return images


def test_special_files_are_skipped_with_a_reason(special):
    walk = walk_images(str(special))
    assert walk.files == ["a.jpg"]
    assert reasons(walk) == dict.fromkeys(
        ["fifo.jpg", "sock.jpg", "zero.jpg"], "not a regular file"
    )
    details = {s.rel: s.detail for s in walk.skipped}
    assert details["fifo.jpg"] == "a named pipe (FIFO), not a file to read an image from"
    assert details["zero.jpg"] == "a link to a character device, not a file to read an image from"


def test_special_files_are_rejected_rows_of_the_plan(special):
    rejected = plan_rejections(special, labels_from="none")
    assert rejected == {
        (None, "fifo.jpg"): "not a regular file",
        (None, "sock.jpg"): "not a regular file",
        (None, "zero.jpg"): "not a regular file",
    }


def test_a_csv_row_naming_a_special_file_gets_its_reason_and_row(special):
    csv_path = write_csv(special.parent / "l.csv", ["id", "label"], [("a", "x"), ("fifo", "y")])
    config = BuildConfig(images=str(special), out="o", labels_csv=str(csv_path), shards=1)
    plan = plan_build(config)
    assert [(r.row, r.path, r.reason) for r in plan.rejected] == [
        (3, str(special / "fifo.jpg"), "not a regular file")
    ]
    # a CSV build lists rows only; files no row names are in the unmatched list
    assert plan.unmatched == ("sock.jpg", "zero.jpg")


def test_a_name_that_is_not_utf8_is_rejected_and_shown_escaped(tmp_path):
    images = tmp_path / "images"
    touch(images / "ok.jpg")
    touch(images / LATIN1_NAME)
    touch(images / os.fsdecode(b"d\xefr") / "x.jpg")  # a folder name, too
    walk = walk_images(str(images))
    assert walk.files == ["ok.jpg"]
    assert reasons(walk) == {
        "caf\\xe9.jpg": "file name not UTF-8",
        "d\\xefr/x.jpg": "file name not UTF-8",
    }
    rejected = plan_rejections(images, labels_from="none")
    assert rejected == {
        (None, "caf\\xe9.jpg"): "file name not UTF-8",
        (None, "d\\xefr/x.jpg"): ("file name not UTF-8"),
    }


def test_csv_ids_naming_a_file_that_is_not_utf8(tmp_path):
    images = tmp_path / "images"
    touch(images / "ok.jpg")
    touch(images / LATIN1_NAME)
    rows = [("ok", "x"), ("café", "y"), ("naïve", "y")]
    csv_path = write_csv(tmp_path / "l.csv", ["id", "label"], rows)
    plan = plan_build(
        BuildConfig(images=str(images), out=str(tmp_path / "o"), labels_csv=str(csv_path))
    )
    by_row = {r.row: (r.reason, r.path) for r in plan.rejected}
    # the UTF-8 id café names the file whose name is café in Latin-1
    assert by_row[3] == ("file name not UTF-8", str(images / "caf\\xe9.jpg"))
    assert by_row[4] == ("missing file", "")
    assert len(plan.rejected) == 2


def test_symlinked_folders_and_files_are_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    touch(elsewhere / "dogs" / "d1.jpg")
    touch(elsewhere / "dogs" / "d2.jpg")
    touch(elsewhere / "c3.jpg")
    images = tmp_path / "images"
    touch(images / "cat" / "c1.jpg")
    touch(images / "cat" / "c2.jpg")
    (images / "cat" / "c3.jpg").symlink_to(elsewhere / "c3.jpg")
    (images / "dog").symlink_to(elsewhere / "dogs", target_is_directory=True)
    walk = walk_images(str(images))
    assert walk.files == ["cat/c1.jpg", "cat/c2.jpg", "cat/c3.jpg", "dog/d1.jpg", "dog/d2.jpg"]
    assert walk.skipped == ()
    plan = plan_build(BuildConfig(images=str(images), out=str(tmp_path / "o"), shards=1))
    assert plan.config.labels_from == "folders" and plan.labels[0].classes == ("cat", "dog")
    assert sum(len(s.rows) for s in plan.shards) == 5


def test_a_folder_reached_twice_or_a_loop_is_reported_once_not_followed(tmp_path):
    images = tmp_path / "images"
    touch(images / "cat" / "c1.jpg")
    touch(images / "dog" / "d1.jpg")
    (images / "dog" / "back").symlink_to(images, target_is_directory=True)  # a loop
    (images / "a_kitty").symlink_to(images / "cat", target_is_directory=True)  # cat again
    (images / "l1").symlink_to(images / "l2")
    (images / "l2").symlink_to(images / "l1")  # a link loop
    (images / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")  # a dangling link
    walk = walk_images(str(images))
    assert walk.files == ["cat/c1.jpg", "dog/d1.jpg"]  # the real folder wins over the link
    assert reasons(walk) == {
        "a_kitty": "repeated folder",
        "dog/back": "repeated folder",
        "gone.jpg": "broken link",
        "l1": "link loop",
        "l2": "link loop",
    }
    details = {s.rel: s.detail for s in walk.skipped}
    assert details["a_kitty"] == "the same folder as cat (by its real path); walked once"
    assert (
        details["dog/back"] == "the same folder as the image folder (by its real path); walked once"
    )
    assert plan_rejections(images) == {(None, rel): reason for rel, reason in reasons(walk).items()}


def test_a_csv_row_inside_a_folder_walked_once_says_so(tmp_path):
    images = tmp_path / "images"
    touch(images / "cat" / "c1.jpg")
    (images / "kitty").symlink_to(images / "cat", target_is_directory=True)
    csv_path = write_csv(tmp_path / "l.csv", ["id", "label"], [("cat/c1", "x"), ("kitty/c1", "x")])
    plan = plan_build(
        BuildConfig(images=str(images), out=str(tmp_path / "o"), labels_csv=str(csv_path))
    )
    (row,) = [r for r in plan.rejected if r.row is not None]
    assert (row.row, row.reason) == (3, "repeated folder")


def test_an_unreadable_folder_is_reported(tmp_path, monkeypatch):
    images = tmp_path / "images"
    touch(images / "a" / "x.jpg")
    touch(images / "b" / "y.jpg")
    scandir = os.scandir

    def refuse_b(path):
        if os.path.basename(path) == "b":
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_b)
    walk = walk_images(str(images))
    assert walk.files == ["a/x.jpg"]
    assert [(s.rel, s.reason, s.detail) for s in walk.skipped] == [
        ("b", "unreadable folder", "Permission denied")
    ]


def test_a_real_nested_folder_wins_over_a_link_to_it_higher_up(tmp_path):
    """The link (alink) is reached before the real folder (sub/real) it points to: the real
    path still claims the files, so rows naming it land and the link is the repeat."""
    images = tmp_path / "images"
    for i in range(4):
        touch(images / "sub" / "real" / f"x{i}.jpg")
    (images / "alink").symlink_to("sub/real")
    walk = walk_images(str(images))
    assert walk.files == [f"sub/real/x{i}.jpg" for i in range(4)]
    assert reasons(walk) == {"alink": "repeated folder"}
    csv_path = write_csv(tmp_path / "l.csv", ["image_id"], [[f"sub/real/x{i}"] for i in range(4)])
    assert plan_rejections(images, labels_csv=str(csv_path)) == {}


def test_rows_naming_a_broken_link_or_a_loop_get_its_reason_and_are_not_unmatched(tmp_path):
    images = tmp_path / "images"
    touch(images / "a.jpg")
    (images / "broken.jpg").symlink_to("nowhere.jpg")
    (images / "loop1").symlink_to("loop1")
    rows = [["a"], ["broken"], ["broken.jpg"], ["loop1"]]
    csv_path = write_csv(tmp_path / "l.csv", ["image_id"], rows)
    config = BuildConfig(
        images=str(images), out=str(tmp_path / "o"), labels_csv=str(csv_path), shards=1
    )
    plan = plan_build(config)
    assert {r.row: r.reason for r in plan.rejected} == {
        3: "broken link",
        4: "broken link",
        5: "link loop",
    }
    assert plan.unmatched == ()
