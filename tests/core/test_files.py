import os
import stat

import pytest

from t2mbench.core.files import atomic_path, write_json


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_get_the_umask_s_permissions(tmp_path, umask, mode):
    """Temporary files are private (0600); the renamed result is what open() would have made."""
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == mode


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert (tmp_path / "a.json").read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_copy_file_atomic_never_leaves_a_truncated_copy(tmp_path, monkeypatch):
    import shutil

    from t2mbench.core.files import copy_file_atomic

    (tmp_path / "src").write_bytes(b"new" * 1000)
    (tmp_path / "dst").write_bytes(b"old")
    assert copy_file_atomic(tmp_path / "src", tmp_path / "dst").read_bytes() == b"new" * 1000

    def killed(src, dst):
        open(dst, "wb").write(b"ne")
        raise OSError(28, "No space left on device")

    (tmp_path / "dst").write_bytes(b"old")
    monkeypatch.setattr(shutil, "copyfile", killed)
    with pytest.raises(OSError):
        copy_file_atomic(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]


def test_an_output_file_is_checked_before_the_run_creating_nothing(tmp_path):
    from t2mbench.core.files import check_output_file

    assert check_output_file(tmp_path / "a" / "b" / "r.json") == tmp_path / "a" / "b" / "r.json"
    assert list(tmp_path.iterdir()) == []  # no folder made, no probe left
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as e:
        check_output_file(tmp_path / "afile" / "sub" / "r.json")
    assert e.value.filename == str(tmp_path / "afile")
    with pytest.raises(IsADirectoryError):
        check_output_file(tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(PermissionError):
            check_output_file(tmp_path / "ro" / "r.json")
