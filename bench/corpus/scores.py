"""The pieces the corpus draws from, and parsing them from music21's bundled corpus.

``pieces.json`` beside this module is a fixed, sorted, versioned table of public-domain
pieces from music21's corpus (Bach chorales, Palestrina masses, Monteverdi madrigals,
Haydn/Mozart/Beethoven/Schumann quartets, folk-tune collections, ...). Each row names the
corpus path (and the tune number inside an ABC collection), curated metadata (composer,
title, collection) and facts surveyed with music21 when the table was made: the beat unit,
where the first full bar starts and where the music ends (quarter lengths), the part count
and the sha256 of the extracted notes. The corpus therefore never depends on how music21
lists or orders its corpus, and a build can tell (``Score.notes_sha256``) whether the
installed music21 parses a piece differently from the one that made the table.

Conventions: offsets and durations are in quarter lengths (ql) from the start of the piece;
pitches are MIDI numbers before transposition; the beat unit is music21's
``TimeSignature.beatDuration`` (1.0 in 4/4, 1.5 in 6/8, 2.0 in 2/2 and 4/2); only pieces
with one beat unit throughout are in the table.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from t2mbench.core.errors import ConfigError
from t2mbench.core.files import write_bytes_atomic

PIECES_FILE = Path(__file__).with_name("pieces.json")


@dataclass(frozen=True)
class PieceInfo:
    """One row of the piece table.

    ``key`` is the corpus path without extension plus ``#<number>`` for a tune inside an ABC
    collection; ``start_ql`` is the offset of the first full bar, ``end_ql`` the end of the
    last note; ``beat_ql`` the beat unit in quarter lengths.
    """

    key: str
    path: str
    number: int | None
    composer: str
    title: str
    collection: str
    parts: int
    beat_ql: float
    start_ql: float
    end_ql: float
    notes_sha256: str

    @property
    def beats(self) -> float:
        """Beats from the first full bar to the end of the music."""
        return (self.end_ql - self.start_ql) / self.beat_ql


@dataclass
class Score:
    """A parsed piece: notes as parallel arrays (one entry per sounding pitch; chords are
    split, ties merged, grace notes and chord symbols dropped) and the bar/beat grid.

    Attributes:
        part: int16 ``[N]`` part index (0 = first part in the score).
        onset: float64 ``[N]`` onset in ql; ``duration`` float64 ``[N]`` in ql (> 0).
        pitch: int16 ``[N]`` MIDI pitch.
        bar_starts: float64 ``[B]`` offsets (ql) of bars that start on their downbeat.
        beats: float64 ``[K]`` beat positions (ql) of the whole piece, sorted.
    """

    info: PieceInfo
    part: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    bar_starts: np.ndarray
    beats: np.ndarray

    @property
    def notes_sha256(self) -> str:
        """sha256 of the note arrays (part, onset, duration, pitch), the table's fingerprint."""
        return notes_fingerprint(self.part, self.onset, self.duration, self.pitch)


def notes_fingerprint(part: np.ndarray, onset: np.ndarray, duration: np.ndarray, pitch: np.ndarray) -> str:
    """Hex sha256 over the little-endian bytes of the four note arrays."""
    h = hashlib.sha256()
    for a, dt in ((part, "<i2"), (onset, "<f8"), (duration, "<f8"), (pitch, "<i2")):
        h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def load_table(path: Path = PIECES_FILE) -> tuple[PieceInfo, ...]:
    """The piece table, sorted by key."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = tuple(PieceInfo(**row) for row in doc["pieces"])
    keys = [r.key for r in rows]
    if keys != sorted(set(keys)):
        raise ConfigError(f"{path}: piece keys must be unique and sorted")
    return rows


def table_info() -> dict:
    """The table's version, the music21 version that surveyed it and its file sha256."""
    doc = json.loads(PIECES_FILE.read_text(encoding="utf-8"))
    return {
        "version": doc["version"],
        "music21": doc["music21"],
        "sha256": hashlib.sha256(PIECES_FILE.read_bytes()).hexdigest(),
    }


def parse_score(info: PieceInfo) -> Score:
    """Parse ``info``'s piece from music21's bundled corpus (never from a pickle cache)."""
    s = load_music21(info.path, info.number)
    part, onset, duration, pitch = extract_notes(s)
    bar_starts, beats, beat_units = bar_grid(s)
    if beat_units != {info.beat_ql}:
        raise ConfigError(
            f"{info.key}: beat units {sorted(beat_units)} from music21 differ from the table's {info.beat_ql}"
        )
    return Score(info, part, onset, duration, pitch, bar_starts, beats)


def survey(path: str, number: int | None = None) -> dict:
    """Parse a corpus piece and return the table's surveyed fields (``parts``, ``beat_ql``,
    ``start_ql``, ``end_ql``, ``notes_sha256``); used to make and check ``pieces.json``.

    Raises:
        ConfigError: the piece has no bars, several beat units, or no notes.
    """
    s = load_music21(path, number)
    part, onset, duration, pitch = extract_notes(s)
    bar_starts, _, beat_units = bar_grid(s)
    if len(beat_units) != 1 or not bar_starts.size or not onset.size:
        raise ConfigError(f"{path}#{number}: needs bars, notes and one beat unit (has {sorted(beat_units)})")
    return {
        "parts": int(part.max()) + 1,
        "beat_ql": float(next(iter(beat_units))),
        "start_ql": float(bar_starts[0]),
        "end_ql": float((onset + duration).max()),
        "notes_sha256": notes_fingerprint(part, onset, duration, pitch),
    }


def refresh_table(path: Path = PIECES_FILE) -> list[str]:
    """Re-survey every row of the table with the installed music21 and rewrite the file
    (keys, metadata and order unchanged); returns the keys whose surveyed fields changed."""
    import music21

    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    changed = []
    for row in doc["pieces"]:
        fresh = survey(row["path"], row["number"])
        if any(row[k] != v for k, v in fresh.items()):
            changed.append(row["key"])
        row.update(fresh)
    doc["music21"] = music21.__version__
    write_bytes_atomic(path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode())
    load_table.cache_clear()
    return changed


def load_music21(path: str, number: int | None = None):
    """The music21 score of corpus ``path`` (tune ``number`` of an ABC collection), parsed
    from source (never from music21's pickle cache)."""
    from music21 import corpus, stream

    try:
        with warnings.catch_warnings():  # music21 warns about every overfull bar it repairs
            warnings.simplefilter("ignore")
            s = corpus.parse(path, number=number, forceSource=True) if number else corpus.parse(path, forceSource=True)
    except Exception as e:  # music21 raises many types for a missing or unreadable work
        raise ConfigError(f"music21 cannot parse corpus piece {path!r} (number {number}): {e}") from None
    if isinstance(s, stream.Opus):
        raise ConfigError(f"corpus piece {path!r} is a collection; give the tune number")
    return s


def _parts(s) -> list:
    """The parts of a score; a score without parts (a bare tune) is its own single part."""
    return list(s.parts) or [s]


def extract_notes(s) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Notes of every part, sorted by (part, onset, duration, pitch). A note that starts
    exactly where a same-pitch note of its part with an open tie (start or continue) ends
    lengthens that note instead of starting a new one. This is ``stripTies`` without its
    deep copy of the whole score (two thirds of the parse time), and unlike it, it never
    merges different pitches (ABC's ``a3-b`` slur-ties) and follows ties into chords."""
    from music21 import harmony

    rows: list[list[float]] = []
    for index, part in enumerate(_parts(s)):
        open_ties: dict[int, int] = {}  # MIDI pitch -> row of a note whose tie is still open
        for n in part.flatten().notes:
            ql = float(n.duration.quarterLength)
            if isinstance(n, harmony.Harmony) or ql <= 0 or not hasattr(n, "pitches"):
                continue
            onset = float(n.offset)
            for pitch, tie in _pitches_and_ties(n):
                midi = int(pitch.midi)
                row = open_ties.pop(midi, None)
                if row is not None and abs(rows[row][1] + rows[row][2] - onset) < 1e-6:
                    rows[row][2] += ql
                else:
                    rows.append([index, onset, ql, midi])
                    row = len(rows) - 1
                if tie is not None and tie.type in ("start", "continue"):
                    open_ties[midi] = row
    rows.sort()
    if not rows:
        return (np.zeros(0, np.int16), np.zeros(0), np.zeros(0), np.zeros(0, np.int16))
    a = np.array(rows, dtype=np.float64)
    return a[:, 0].astype(np.int16), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].astype(np.int16)


def _pitches_and_ties(n) -> list:
    """``(pitch, tie)`` per pitch of a note or chord (a chord's ties live on its notes)."""
    if hasattr(n, "notes"):
        return [(sub.pitch, sub.tie) for sub in n.notes]
    return [(n.pitch, n.tie)]


def bar_grid(s) -> tuple[np.ndarray, np.ndarray, set[float]]:
    """Downbeat bar starts, every beat position, and the set of beat units (ql), from the
    first part's bars. A pickup bar (``paddingLeft`` > 0) is not a bar start, and its beats
    are counted back from the bar line."""
    from music21 import meter, stream

    starts, beats, units = [], [], set()
    for m in _parts(s)[0].getElementsByClass(stream.Measure):
        ts = m.timeSignature or m.getContextByClass(meter.TimeSignature)
        if ts is None:
            continue
        unit = float(ts.beatDuration.quarterLength)
        units.add(unit)
        o, length, pad = float(m.offset), float(m.duration.quarterLength), float(m.paddingLeft)
        if pad == 0:
            starts.append(o)
        k = int(np.ceil(pad / unit - 1e-9))
        while (b := o - pad + k * unit) < o + length - 1e-9:
            beats.append(b)
            k += 1
    return np.array(starts, dtype=np.float64), np.array(sorted(set(beats)), dtype=np.float64), units
