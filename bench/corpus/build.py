"""Building the rendered-score corpus: plan, render, write, resume.

Output folder::

    audio/<id>.wav      stereo 44.1 kHz PCM_16, exactly ``seconds`` long
    truth/<id>.npz      ground truth (see :mod:`t2mbench.bench.corpus.truth`)
    records/<id>.json   the clip's manifest row and the settings that made it
    provenance.json     seeds, versions (music21, pretty_midi, tinysoundfont), soundfont sha256
    manifest.jsonl      one row per clip, written last (plus manifest.parquet)

Determinism: clip ``i`` draws everything from ``SeedSequence([seed, i])`` (one child stream
for the arrangement, one for the caption), so the same arguments give byte-identical audio
and manifest, clip ``i`` does not depend on how many clips are built, and the work can be
split across processes in any order.

Level: each clip is loudness-normalised to -20 LUFS (BS.1770) and, if its sample peak would
then pass -1 dBFS, peak-normalised to -1 dBFS instead.

Splits: a piece is in ``test`` when the first 8 hex digits of sha256(piece key) / 16**8 <
0.2, else in ``train`` (about 80/20 by piece); all clips of a piece share its split.

Resume: every file is written under a temporary name and renamed; a clip counts as done
when its record exists, was made with the same seed, length, recipe and piece table, and
the audio's sha256 matches it. A rerun reuses done clips, renders the rest, deletes stale
temporary files, and writes the manifest last.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from t2mbench.bench.corpus import arrange as arr
from t2mbench.bench.corpus import captions, render, scores, truth
from t2mbench.core import provenance
from t2mbench.core.audio import loudness_normalize, peak_normalize, save_audio
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json, sha256_file, write_json
from t2mbench.core.manifest import ClipRecord, write_manifest
from t2mbench.core.processes import die_with_parent
from t2mbench.core.progress import progress_bar

RECIPE = 1  # bump whenever a change alters what a clip renders to
SAMPLE_RATE = render.SAMPLE_RATE
CHANNELS = 2
LOUDNESS_LUFS = -20.0
PEAK_CEILING_DB = -1.0
TEST_FRACTION = 0.2
SPLITS = ("train", "test")
MIN_SECONDS = 1.0
AUDIO_DIR, TRUTH_DIR, RECORDS_DIR = "audio", "truth", "records"
_TEMPORARY = re.compile(r"\..+\.[^.]+\.tmp(\.\w+)?")


@dataclass
class BuildResult:
    """What :func:`build_corpus` did: the clips (in id order), and which were rendered
    now and which reused from an earlier, interrupted build."""

    out: Path
    clips: list[ClipRecord]
    rendered: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    differing_pieces: list[str] = field(default_factory=list)


def clip_id(index: int) -> str:
    """``clip00042`` for index 42."""
    return f"clip{index:05d}"


def clip_streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The clip's two random streams: arrangement (piece first) and caption."""
    a, c = np.random.SeedSequence([seed, index]).spawn(2)
    return np.random.default_rng(a), np.random.default_rng(c)


def split_of(piece_key: str) -> str:
    """``"test"`` for about 20 % of pieces (by a hash of the key), else ``"train"``."""
    return "test" if int(hashlib.sha256(piece_key.encode()).hexdigest()[:8], 16) / 16**8 < TEST_FRACTION else "train"


OWNER = "corpus build"  # the owner a corpus folder records (t2mbench.core.ownership)


def owner_settings(clips: int, seconds: float, seed: int, split: str | None) -> dict[str, Any]:
    """The settings that define a corpus folder's clips, as its owner record holds them (a resume
    with these reuses the clips; other ones would re-render them)."""
    return {"clips": clips, "seconds": seconds, "seed": seed, "split": split}


def build_corpus(
    out: str | os.PathLike,
    clips: int,
    seconds: float,
    seed: int,
    *,
    workers: int = 1,
    split: str | None = None,
    progress: bool = True,
) -> BuildResult:
    """Render ``clips`` clips of ``seconds`` s from music21 pieces into ``out`` (see the
    module docstring); resumes an interrupted build in the same folder.

    Args:
        out: output folder (created; may hold an earlier build, whose finished clips are reused).
        clips: number of clips, >= 1.
        seconds: clip length in seconds, from 1 to the longest any piece allows.
        seed: non-negative integer; everything random derives from it.
        workers: processes to render in (1 = in this process).
        split: ``"train"`` or ``"test"`` to render only clips of that split: the first
            ``clips`` indices whose piece falls in it, so each clip is identical (same id, same
            audio) to the clip of that index in a full build with the same seed.
        progress: show a progress bar on stderr.

    Raises:
        ConfigError: a bad argument, naming it and the allowed range.
    """
    table = scores.load_table()
    out = _check_args(out, clips, seconds, seed, workers, table)
    indices = _clip_indices(clips, seed, seconds, table, split)
    for sub in (AUDIO_DIR, TRUTH_DIR, RECORDS_DIR):
        (out / sub).mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out / sub)
    _remove_stale_temporaries(out)

    settings = _settings(seed, seconds)
    rows: dict[int, dict] = {}
    for i in indices:
        row = _finished_row(out, i, settings)
        if row is not None:
            rows[i] = row
    result = BuildResult(out, [], reused=[clip_id(i) for i in sorted(rows)])

    groups: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        if i not in rows:
            groups[arr.choose_piece(clip_streams(seed, i)[0], table, seconds).key].append(i)
    jobs = [(key, groups[key]) for key in sorted(groups)]
    with progress_bar(total=clips, initial=len(rows), unit="clip", desc="corpus build", disable=not progress) as bar:
        for made, differs in _run(jobs, str(out), seed, seconds, workers, bar.update):
            rows.update(made)
            if differs:
                result.differing_pieces.append(differs)
    result.rendered = sorted(clip_id(i) for i in rows if clip_id(i) not in result.reused)

    result.clips = [_record(out, rows[i]) for i in indices]
    provenance.write(out, _provenance(clips, seconds, seed, split, result))
    write_manifest(out, result.clips)
    return result


def render_piece_clips(
    out: str, key: str, indices: list[int], seed: int, seconds: float
) -> tuple[dict[int, dict], str]:
    """Parse piece ``key`` once and make its clips; returns ``({index: manifest row}, key if
    the installed music21 parses the piece differently from the table, else "")``."""
    info = {p.key: p for p in scores.load_table()}[key]
    score = scores.parse_score(info)
    made = {i: make_clip(Path(out), i, seed, seconds, score) for i in indices}
    return made, ("" if score.notes_sha256 == info.notes_sha256 else key)


def make_clip(out: Path, index: int, seed: int, seconds: float, score: scores.Score) -> dict:
    """Arrange, render and write clip ``index`` of ``score``'s piece; returns its manifest row."""
    cid = clip_id(index)
    rng, caption_rng = clip_streams(seed, index)
    piece = arr.choose_piece(rng, scores.load_table(), seconds)  # advances the stream as planning did
    if piece.key != score.info.key:
        raise ValueError(f"{cid}: planned for {piece.key}, given {score.info.key}")
    arrangement = arr.arrange(rng, score, seconds)
    notes = arr.clip_notes(score, arrangement, seconds, SAMPLE_RATE)
    n_samples = int(round(seconds * SAMPLE_RATE))
    audio = render.render(
        render.Notes(notes.part, notes.start, notes.end, notes.pitch, notes.velocity),
        arrangement.programs, arrangement.pans, n_samples, SAMPLE_RATE,
    )
    audio = _normalise(audio, cid)
    wav = save_audio(out / AUDIO_DIR / f"{cid}.wav", audio, SAMPLE_RATE, subtype="PCM_16")

    tonic, mode = truth.estimate_key(notes, seconds, SAMPLE_RATE)
    density = round(truth.note_density(notes, seconds), 4)
    times, midi, hz = truth.melody(notes, seconds, SAMPLE_RATE)
    loud_t, loud_db = truth.loudness_curve(audio, SAMPLE_RATE)
    truth_path = truth.write_npz(out / TRUTH_DIR / f"{cid}.npz", {
        "frame_rate": np.int64(truth.FRAME_RATE),
        "melody_times": times, "melody_midi": midi, "melody_hz": hz,
        "beat_times": notes.beats, "tempo_bpm": np.float64(arrangement.tempo_bpm),
        "loudness_times": loud_t, "loudness_db": loud_db,
        "programs": np.asarray(arrangement.programs, dtype=np.int16),
        "key": np.str_(tonic), "mode": np.str_(mode), "note_density": np.float64(density),
    })

    info = score.info
    instruments = [pretty_midi.program_to_instrument_name(p).lower() for p in arrangement.programs]
    families = sorted({pretty_midi.program_to_instrument_class(p).lower() for p in arrangement.programs})
    mood = captions.mood_words(mode, arrangement.tempo_bpm)
    text, style = captions.caption({
        "composer": info.composer,
        "title": info.title,
        "collection": info.collection,
        "instruments": list(dict.fromkeys(instruments)),
        "tempo": f"{arrangement.tempo_bpm} bpm",
        "key": f"{tonic} {mode}",
        "mood": mood,
    }, caption_rng)
    attributes: dict[str, Any] = {
        "composer": info.composer,
        "title": info.title,
        "collection": info.collection,
        "piece": info.key,
        "ensemble": arrangement.ensemble,
        "programs": list(arrangement.programs),
        "instruments": instruments,
        "instrument_families": families,
        "tempo_bpm": arrangement.tempo_bpm,
        "tempo_bucket": captions.tempo_bucket(arrangement.tempo_bpm),
        "beat_ql": info.beat_ql,
        "key": tonic,
        "mode": mode,
        "transpose": arrangement.transpose,
        "pans": [arr.pan_position(cc) for cc in arrangement.pans],
        "velocities": list(arrangement.velocities),
        "mood": mood,
        "note_density": density,
        "segment_start_ql": arrangement.start_ql,
        "caption_style": style,
    }
    record = ClipRecord(
        id=cid, path=wav, caption=text, seconds=float(seconds), sample_rate=SAMPLE_RATE, channels=CHANNELS,
        sha256=sha256_file(wav), split=split_of(info.key), attributes=attributes, truth=truth_path,
    )
    row = record.to_row(out)
    write_json(out / RECORDS_DIR / f"{cid}.json", {"settings": _settings(seed, seconds), "index": index, "row": row})
    return row


def _run(jobs, out: str, seed: int, seconds: float, workers: int, advance: Callable[[int], Any]):
    """Yield each piece job's result, in this process or in ``workers`` processes."""
    if workers == 1 or len(jobs) <= 1:
        for key, indices in jobs:
            yield render_piece_clips(out, key, indices, seed, seconds)
            advance(len(indices))
        return
    # largest jobs first so that the two processes finish together
    order = sorted(jobs, key=lambda j: -len(j[1]))
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(render_piece_clips, out, key, idx, seed, seconds): len(idx) for key, idx in order}
        for fut in as_completed(futures):
            yield fut.result()
            advance(futures[fut])


def _normalise(audio: np.ndarray, source: str) -> np.ndarray:
    level = loudness_normalize(audio, SAMPLE_RATE, LOUDNESS_LUFS, source=source)
    if 20 * math.log10(float(np.abs(level).max())) > PEAK_CEILING_DB:
        level = peak_normalize(audio, PEAK_CEILING_DB, source=source)
    return level


def _clip_indices(clips: int, seed: int, seconds: float, table, split: str | None) -> list[int]:
    """Clip indices to build: ``0..clips-1``, or the first ``clips`` whose piece is in ``split``."""
    if split is None:
        return list(range(clips))
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    out, i = [], 0
    while len(out) < clips:
        if split_of(arr.choose_piece(clip_streams(seed, i)[0], table, seconds).key) == split:
            out.append(i)
        i += 1
    return out


def _check_args(out, clips, seconds, seed, workers, table) -> Path:
    if isinstance(clips, bool) or not isinstance(clips, (int, np.integer)) or clips < 1:
        raise ConfigError(f"clips must be a whole number >= 1, got {clips!r}")
    longest = arr.max_seconds(table)
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not MIN_SECONDS <= seconds <= longest:
        raise ConfigError(
            f"seconds must be between {MIN_SECONDS:g} and {longest:g} (the longest piece at {arr.TEMPO_MIN} bpm), "
            f"got {seconds!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"out={path} is a file; give a folder for the corpus")
    return path


def _settings(seed: int, seconds: float) -> dict:
    return {"seed": int(seed), "seconds": float(seconds), "recipe": RECIPE, "pieces": scores.table_info()["sha256"]}


def _finished_row(out: Path, index: int, settings: dict) -> dict | None:
    """The manifest row of clip ``index`` if an earlier build finished it with ``settings``."""
    cid = clip_id(index)
    try:
        record = read_json(out / RECORDS_DIR / f"{cid}.json")
        row = record["row"]
        done = (
            record["settings"] == settings and record["index"] == index
            and (out / row["truth"]).is_file() and sha256_file(out / row["path"]) == row["sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return row if done else None


def _record(out: Path, row: dict) -> ClipRecord:
    return ClipRecord(**{**row, "path": out / row["path"], "truth": out / row["truth"]})


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed build left (``atomic_path`` names them ``.<name>.<random>.tmp<suffix>``)."""
    for p in folder.iterdir():
        if _TEMPORARY.fullmatch(p.name) and p.is_file():
            p.unlink()


def _provenance(clips: int, seconds: float, seed: int, split: str | None, result: BuildResult) -> dict:
    return provenance.collect(
        seeds={"corpus": int(seed)},
        device="cpu",
        extra={
            "corpus": {
                "clips": clips,
                "split": split,
                "seconds": float(seconds),
                "sample_rate": SAMPLE_RATE,
                "channels": CHANNELS,
                "loudness_lufs": LOUDNESS_LUFS,
                "peak_ceiling_db": PEAK_CEILING_DB,
                "test_fraction": TEST_FRACTION,
                "recipe": RECIPE,
                "piece_table": scores.table_info(),
                "music21": metadata.version("music21"),
                "pretty_midi": metadata.version("pretty_midi"),
                "tinysoundfont": metadata.version("tinysoundfont"),
                "soundfont": {"file": render.SOUNDFONT, "sha256": render.soundfont_sha256()},
                "rendered": len(result.rendered),
                "reused": len(result.reused),
                "pieces_parsed_differently_from_table": sorted(result.differing_pieces),
            }
        },
    )
