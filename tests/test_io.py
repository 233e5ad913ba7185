"""Writing results never leaves half-written files, and cleans up after a killed writer."""

import os

import pytest

from tfl.io import atomic_directory, write_text_atomic


def test_a_temporary_left_by_a_killed_writer_is_removed_on_the_next_write(tmp_path):
    target = tmp_path / "export"
    dead = tmp_path / ".export.4999999.x1y2.tmp"  # pid above the kernel's maximum: not alive
    dead.mkdir()
    (dead / "half.tflite").write_bytes(b"\0")
    alive = tmp_path / f".export.{os.getpid()}.x3y4.tmp"  # another write still under way
    alive.mkdir()
    with atomic_directory(target) as tmp:
        (tmp / "model.tflite").write_bytes(b"ok")
    assert not dead.exists() and alive.exists()
    assert (target / "model.tflite").read_bytes() == b"ok"


def test_a_failed_write_leaves_the_previous_result_and_no_temporary(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target) as tmp:
        (tmp / "v1").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "v2").write_text("second")
            raise RuntimeError("conversion failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert [p.name for p in target.iterdir()] == ["v1"]


def test_write_text_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "history.json"
    write_text_atomic(path, "[1]")
    write_text_atomic(path, "[1, 2]")
    assert path.read_text() == "[1, 2]" and len(list(tmp_path.iterdir())) == 1


def test_a_writer_killed_between_its_two_renames_loses_nothing(tmp_path):
    from tfl.io import recover_directory

    target = tmp_path / "checkpoint"
    # What a kill after "move the old one aside" and before "rename the new one in" leaves:
    aside = tmp_path / ".checkpoint.4999999.a1.tmp"
    (aside / "checkpoint").mkdir(parents=True)
    (aside / "checkpoint" / "progress.json").write_text("{}")
    new = tmp_path / ".checkpoint.4999999.b2.tmp"
    new.mkdir()
    assert (recover_directory(target) / "progress.json").read_text() == "{}"
    with atomic_directory(target) as tmp:
        (tmp / "progress.json").write_text("[1]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert (target / "progress.json").read_text() == "[1]"
