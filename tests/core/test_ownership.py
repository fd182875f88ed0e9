import json
import os

import pytest

from t2mbench.core.ownership import OWNER_FILE, OwnershipError, claim


def test_the_same_command_and_settings_resume(tmp_path):
    claim(tmp_path / "o", "generate", {"seed": 1, "steps": (10, 50)})
    (tmp_path / "o" / "clip.wav").write_bytes(b"x")
    claim(tmp_path / "o", "generate", {"seed": 1, "steps": [10, 50]})  # a tuple is its JSON list
    assert json.loads((tmp_path / "o" / OWNER_FILE).read_text()) == {
        "command": "generate", "settings": {"seed": 1, "steps": [10, 50]}}


def test_another_command_other_settings_or_an_unowned_folder_are_refused(tmp_path):
    claim(tmp_path / "c", "corpus build", {"seed": 0, "clips": 64})
    with pytest.raises(OwnershipError, match=rf"^{tmp_path / 'c'} belongs to `t2mbench corpus build`; choose another "
                                             r"--out, or pass --overwrite to let `t2mbench generate` take it over$"):
        claim(tmp_path / "c", "generate", {"seed": 0})
    with pytest.raises(OwnershipError, match=r"holds a `t2mbench corpus build` run with other settings \(seed=0 here, "
                                             r"1 now\); choose another --out"):
        claim(tmp_path / "c", "corpus build", {"seed": 1, "clips": 64})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OwnershipError, match="mine is not empty and no t2mbench command owns it"):
        claim(tmp_path / "mine", "score", {})
    claim(tmp_path / "c", "generate", {"seed": 0}, overwrite=True)
    assert json.loads((tmp_path / "c" / OWNER_FILE).read_text())["command"] == "generate"


def test_a_folder_that_cannot_be_written_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        claim(tmp_path / "file" / "out", "score", {})
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(OSError):
            claim(tmp_path / "ro" / "out", "score", {})
