import json
import os
import stat

import pytest

from unetkit import atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def strict_umask():
    """A umask that would make default-created files 0600 and folders 0700: the writer must not care."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_write_bytes_and_json_are_0644_in_new_0755_folders(tmp_path, strict_umask):
    out = atomic.write_bytes(tmp_path / "a" / "b" / "data.bin", b"\x00\x01")
    assert out.read_bytes() == b"\x00\x01"
    assert mode(out) == 0o644
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o755
    js = atomic.write_json(tmp_path / "x.json", {"name": "Größe", "n": [1, 2]})
    assert (
        js.read_text(encoding="utf-8")
        == json.dumps({"name": "Größe", "n": [1, 2]}, indent=4, ensure_ascii=False) + "\n"
    )
    assert mode(js) == 0o644


def test_replacing_a_file_keeps_0644_and_fsync_path_works(tmp_path, strict_umask):
    target = tmp_path / "f.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic.write_bytes(target, b"new", fsync=True)
    assert target.read_bytes() == b"new" and mode(target) == 0o644


def test_failed_file_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_file(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_write_folder_builds_beside_and_renames(tmp_path, strict_umask):
    target = tmp_path / "out"
    with atomic.write_folder(target) as staging:
        assert (
            staging.parent == tmp_path and staging.name.startswith(".out.") and staging.name.endswith(".tmp")
        )
        assert not target.exists()
        atomic.write_bytes(staging / "sub" / "f.bin", b"1")
    assert (target / "sub" / "f.bin").read_bytes() == b"1"
    assert mode(target) == mode(target / "sub") == 0o755
    assert mode(target / "sub" / "f.bin") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_write_folder_replaces_an_empty_folder_and_refuses_a_full_one(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic.write_folder(tmp_path / "empty") as staging:
        (staging / "f").write_text("x")
    assert (tmp_path / "empty" / "f").read_text() == "x"
    with pytest.raises(FileExistsError):
        with atomic.write_folder(tmp_path / "empty"):
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        with atomic.write_folder(tmp_path / "file"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file"]


def test_failed_folder_build_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.write_folder(tmp_path / "out") as staging:
            (staging / "partial.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_folder_taken_during_the_build_is_not_overwritten(tmp_path):
    with pytest.raises(FileExistsError):
        with atomic.write_folder(tmp_path / "out") as staging:
            (staging / "mine").write_text("x")
            (tmp_path / "out").mkdir()
            (tmp_path / "out" / "theirs").write_text("y")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_make_folder_is_0755_and_leaves_existing_folders_alone(tmp_path, strict_umask):
    (tmp_path / "keep").mkdir(mode=0o700)
    atomic.make_folder(tmp_path / "keep" / "a" / "b")
    assert mode(tmp_path / "keep") == 0o700
    assert mode(tmp_path / "keep" / "a") == mode(tmp_path / "keep" / "a" / "b") == 0o755
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        atomic.make_folder(tmp_path / "file" / "sub")
