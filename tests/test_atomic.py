"""Atomic writes (odqa.atomic): a failed write leaves the previous file or folder as it was, and no litter."""

import os

import pytest

from odqa.atomic import AtomicFolder, atomic_file, atomic_write_text, recover


def test_text_is_written_and_replaced_whole(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text(encoding="utf-8") == "two" and os.listdir(tmp_path) == ["a.json"]


def test_a_failed_file_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.csv"]


def test_folder_replaces_the_previous_one_or_keeps_it_on_failure(tmp_path):
    final = tmp_path / "model"
    for text in ("v1", "v2"):
        with AtomicFolder(final) as tmp:
            (tmp / "w").write_text(text)
    with pytest.raises(RuntimeError):
        with AtomicFolder(final) as tmp:
            (tmp / "w").write_text("v3")
            raise RuntimeError("interrupted")
    assert (final / "w").read_text() == "v2" and os.listdir(tmp_path) == ["model"]


def test_publish_once_keeps_the_folder_another_writer_finished(tmp_path):
    final = tmp_path / "cache"
    with AtomicFolder(final, replace=False) as tmp:
        (tmp / "w").write_text("first")
        with AtomicFolder(final, replace=False) as other:            # a concurrent writer finishes first
            (other / "w").write_text("second")
    assert (final / "w").read_text() == "second" and os.listdir(tmp_path) == ["cache"]


def test_recover_removes_a_dead_writers_folder_and_leaves_unknown_ones(tmp_path):
    final = tmp_path / "idx"
    dead = tmp_path / ".idx.tmp-999999999-1"
    foreign = tmp_path / ".idx.tmp-k3x_9q"
    dead.mkdir()
    foreign.mkdir()
    recover(final)
    assert not dead.exists() and foreign.exists()
