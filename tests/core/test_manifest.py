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


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("manifest.jsonl", '{"id": "a"}\n{"id": "b",\n', r"manifest.jsonl: line 2 is not JSON \(Expecting"),
        ("manifest.jsonl", '{"id": "a"}\n\n[1, 2]\n', "manifest.jsonl: line 3 is a JSON list, not an object"),
        ("set.jsonl", '"a"\n', "set.jsonl: line 1 is a JSON str, not an object"),
        ("set.jsonl", '{"id": "a", "seconds": "long"}\n', "set.jsonl: clip 'a': seconds 'long' is not a number"),
        ("set.jsonl", '{"id": "a", "sample_rate": 8000.5}\n',
         "set.jsonl: clip 'a': sample_rate 8000.5 is not an integer"),
        ("set.jsonl", '{"id": "a", "seconds": true}\n', "set.jsonl: clip 'a': seconds True is not a number"),
        ("set.jsonl", '{"id": "a", "attributes": [1]}\n',
         r"set.jsonl: clip 'a': attributes must be an object, got list \[1\]"),
        ("c.csv", "id,seconds\na,ten\n", "c.csv: clip 'a': seconds 'ten' is not a number"),
        ("c.csv", "id,attributes\na,{seed: 1}\n", r"c.csv: clip 'a': attributes '\{seed: 1\}' is not JSON \(Expecting"),
        ("c.csv", "id,seconds\na,nan\n", "c.csv: clip 'a': seconds 'nan' is not a finite number"),
    ],
)  # fmt: skip
def test_malformed_rows_are_one_manifest_error_naming_the_line_or_clip(tmp_path, name, text, message):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav")
    (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=message):
        load_clipset(tmp_path)


def test_a_utf8_bom_before_a_csv_header_is_read(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "c.csv").write_bytes("\ufeffid,caption\na,piano\n".encode())
    s = load_clipset(tmp_path)
    assert s.ids == ["a"] and s.clips[0].caption == "piano"


@pytest.mark.parametrize("text", ['{"id": "a"}\n[1]\n', "id,seconds\na,ten\n"])
def test_the_cli_reports_a_malformed_manifest_in_one_line(tmp_path, capsys, text):
    from t2mbench.cli import main

    _wav(tmp_path / "a.wav")
    (tmp_path / ("m.jsonl" if text.startswith("{") else "m.csv")).write_text(text)
    assert main(["corpus", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2mbench corpus: error: ") and len(err.strip().splitlines()) == 1
