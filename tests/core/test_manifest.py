import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2mbench.core.audio import save_audio
from t2mbench.core.errors import ManifestError
from t2mbench.core.manifest import ClipRecord, load_clipset, match_ids, write_manifest

SR = 8000


def _wav(path, seconds=0.1):
    save_audio(path, np.full((1, int(SR * seconds)), 0.1, np.float32), SR)
    return path


def test_external_csv_set_resolves_id_named_files_and_captions(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.flac")
    (tmp_path / "captions.csv").write_text("id,caption\na,piano solo\nb,string quartet\n")
    s = load_clipset(tmp_path)
    assert s.ids == ["a", "b"]
    assert [c.caption for c in s] == ["piano solo", "string quartet"]
    assert s.by_id()["b"].path == tmp_path / "b.flac"


def test_external_jsonl_with_explicit_paths(tmp_path):
    (tmp_path / "audio").mkdir()
    _wav(tmp_path / "audio" / "x1.wav")
    (tmp_path / "set.jsonl").write_text(json.dumps({"id": "x1", "caption": "c", "path": "audio/x1.wav"}) + "\n")
    s = load_clipset(tmp_path / "set.jsonl")
    assert s.clips[0].path == tmp_path / "audio" / "x1.wav"


def test_missing_files_are_listed(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "c.csv").write_text("id,caption\na,x\nb,y\nc,z\n")
    with pytest.raises(ManifestError, match=r"ids listed without an audio file in .*: b, c$"):
        load_clipset(tmp_path / "c.csv")


def test_duplicate_ids_are_listed(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "c.csv").write_text("id,caption\na,x\na,y\n")
    with pytest.raises(ManifestError, match=r"duplicate ids: a$"):
        load_clipset(tmp_path / "c.csv")


def test_unmatched_audio_files_are_listed(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "stray.wav")
    (tmp_path / "c.csv").write_text("id,caption\na,x\n")
    with pytest.raises(ManifestError, match=r"audio files in .* that no row names: stray.wav$"):
        load_clipset(tmp_path / "c.csv")


def test_rows_without_id(tmp_path):
    (tmp_path / "c.csv").write_text("name,caption\na,x\n")
    with pytest.raises(ManifestError, match=r"rows without an id \(rows 1\)"):
        load_clipset(tmp_path / "c.csv")


def test_long_listings_are_truncated(tmp_path):
    (tmp_path / "c.csv").write_text("id\n" + "\n".join(f"m{i:02d}" for i in range(13)) + "\n")
    with pytest.raises(ManifestError, match=r"m09 \(and 3 more\)$"):
        load_clipset(tmp_path / "c.csv")


def test_plain_folder_uses_stems(tmp_path):
    _wav(tmp_path / "z.wav")
    _wav(tmp_path / "y.ogg")
    assert load_clipset(tmp_path).ids == ["y", "z"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.jsonl, caption table or audio files"):
        load_clipset(tmp_path)


def test_roundtrip_through_manifest_and_parquet(tmp_path):
    _wav(tmp_path / "clips" / "c0.wav")
    rec = ClipRecord(
        id="c0", path=tmp_path / "clips" / "c0.wav", caption="cap", seconds=0.1, sample_rate=SR, channels=1,
        split="test", attributes={"tempo_bpm": 96, "programs": [0, 40]},
    )
    write_manifest(tmp_path, [rec])
    row = json.loads((tmp_path / "manifest.jsonl").read_text())
    assert row["path"] == "clips/c0.wav"
    back = load_clipset(tmp_path).clips[0]
    assert back.path == tmp_path / "clips" / "c0.wav" and back.attributes == {"tempo_bpm": 96, "programs": [0, 40]}
    table = pd.read_parquet(tmp_path / "manifest.parquet")
    assert list(table["id"]) == ["c0"] and json.loads(table["attributes"][0])["programs"] == [0, 40]
    assert load_clipset(tmp_path / "manifest.parquet").clips[0].attributes["tempo_bpm"] == 96


def test_a_manifest_of_clips_outside_its_folder_points_at_them(tmp_path, monkeypatch):
    # clips named relative to the working directory, listed from another folder: the row
    # must not keep the cwd-relative path, which the reader would resolve under that folder
    monkeypatch.chdir(tmp_path)
    _wav(tmp_path / "corpus" / "audio" / "c0.wav")
    rec = ClipRecord(id="c0", path=Path("corpus/audio/c0.wav"), sample_rate=SR, channels=1)
    write_manifest(tmp_path / "sets" / "train", [rec])
    assert json.loads((tmp_path / "sets" / "train" / "manifest.jsonl").read_text())["path"] == str(
        tmp_path.resolve() / "corpus" / "audio" / "c0.wav"
    )
    assert load_clipset(tmp_path / "sets" / "train").clips[0].path == tmp_path.resolve() / "corpus" / "audio" / "c0.wav"


def test_match_ids_lists_both_sides(tmp_path):
    for d, names in (("g", "ab"), ("r", "bc")):
        (tmp_path / d).mkdir()
        for n in names:
            _wav(tmp_path / d / f"{n}.wav")
    g, r = load_clipset(tmp_path / "g"), load_clipset(tmp_path / "r")
    with pytest.raises(ManifestError, match=r"only in generated .*: a; only in reference .*: c"):
        match_ids(g, r)
    assert match_ids(g, g) == ["a", "b"]
