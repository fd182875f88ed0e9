"""Per-clip choices, all drawn from the clip's own random stream: the piece, the tempo,
the transposition, the ensemble (General MIDI programs per part), the pan and loudness of
each part and the segment; and the clip's notes and beats in seconds.

Decisions:
- A clip first draws a collection uniformly among those with a piece long enough, then a
  piece uniformly within it (so 25 Ryan's Mammoth tunes do not outweigh 9 Haydn movements).
  A piece is long enough when, at the slowest tempo, its music from the first full bar
  lasts ``seconds``.
- Tempo: an integer in [60, 160] beats per minute of the time signature's beat unit
  (quarter in 4/4, dotted quarter in 6/8, half in 2/2 and 4/2), capped so the music lasts.
- Transposition: an integer in [-5, +5] semitones.
- Ensemble: one of :data:`ENSEMBLES`, each a list of programs from the top voice down. Parts
  are ranked by mean pitch; the lowest part takes the ensemble's last (bass) program, the
  others take its programs from the top, repeating the second-to-last when there are more
  parts than programs. ``mixed`` draws each part from a pool for its register.
- Pan: MIDI CC 10 value in [24, 104] per part (64 = centre), reported as ``(cc - 64) / 63``.
- Velocity: an integer in [70, 100] per part.
- Segment: a bar start (never a pickup) from which ``seconds`` of music remain; candidates
  are tried in random order and the first whose notes sound in at least 80 % of the
  window wins (the best one if none does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t2mbench.bench.corpus.scores import PieceInfo, Score

TEMPO_MIN, TEMPO_MAX = 60, 160
TRANSPOSE_MAX = 5
PAN_CC_RANGE = (24, 104)
VELOCITY_RANGE = (70, 100)
MIN_COVERAGE = 0.8

# General MIDI programs (0-based), top voice first, bass last
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "piano": (0,),
    "harpsichord": (6,),
    "organ": (19,),
    "strings": (40, 40, 41, 42),
    "string orchestra": (48,),
    "choir": (52,),
    "brass": (56, 60, 57, 58),
    "woodwinds": (73, 68, 71, 70),
    "saxophones": (64, 65, 66, 67),
    "guitars": (24, 24, 25),
    "mallets": (9, 11, 12),
    "mixed": (),
}
# pools for "mixed": top, middle and bottom registers
MIXED_POOLS = ((40, 73, 68, 56, 71, 0, 11), (41, 71, 60, 66, 24, 0), (42, 70, 57, 58, 43, 32))


@dataclass(frozen=True)
class Arrangement:
    """What a clip plays: ``programs``/``pans`` (CC 10)/``velocities`` per part of the piece,
    ``tempo_bpm`` in beats of the piece's beat unit, ``transpose`` in semitones and the
    segment start ``start_ql`` (quarter lengths from the start of the piece)."""

    piece: PieceInfo
    ensemble: str
    programs: tuple[int, ...]
    pans: tuple[int, ...]
    velocities: tuple[int, ...]
    tempo_bpm: int
    transpose: int
    start_ql: float

    @property
    def seconds_per_ql(self) -> float:
        return 60.0 / (self.tempo_bpm * self.piece.beat_ql)


@dataclass(frozen=True)
class ClipNotes:
    """The clip's notes and beats. Parallel arrays ``[N]``: ``part``, ``pitch`` (transposed
    MIDI), ``velocity``, ``start``/``end`` (sample positions at the clip's rate, relative to
    the clip start; a note held over from before the segment starts at 0; ends may pass the
    clip end) and ``in_clip`` (the note's onset lies inside the clip). ``beats`` are beat
    times in seconds within [0, seconds)."""

    part: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    start: np.ndarray
    end: np.ndarray
    in_clip: np.ndarray
    beats: np.ndarray


def max_seconds(table: Sequence[PieceInfo]) -> float:
    """The longest clip any piece allows: its beats at the slowest tempo."""
    return max(p.beats for p in table) * 60.0 / TEMPO_MIN


def choose_piece(rng: np.random.Generator, table: Sequence[PieceInfo], seconds: float) -> PieceInfo:
    """A collection uniformly among those with a long enough piece, then a piece in it."""
    eligible = [p for p in table if p.beats * 60.0 / TEMPO_MIN >= seconds]
    collections = sorted({p.collection for p in eligible})
    collection = collections[int(rng.integers(len(collections)))]
    pieces = [p for p in eligible if p.collection == collection]
    return pieces[int(rng.integers(len(pieces)))]


def arrange(rng: np.random.Generator, score: Score, seconds: float) -> Arrangement:
    """Draw tempo, transposition, ensemble, pans, velocities and segment for ``score``."""
    info = score.info
    fastest = min(TEMPO_MAX, math.floor(60.0 * info.beats / seconds))
    if fastest < TEMPO_MIN:
        raise ValueError(f"{info.key}: {info.beats:g} beats cannot last {seconds:g} s at {TEMPO_MIN} bpm or faster")
    tempo = int(rng.integers(TEMPO_MIN, fastest + 1))
    transpose = int(rng.integers(-TRANSPOSE_MAX, TRANSPOSE_MAX + 1))
    names = list(ENSEMBLES)
    ensemble = names[int(rng.integers(len(names)))]
    programs = assign_programs(rng, ensemble, _register_ranks(score))
    pans = tuple(int(v) for v in rng.integers(PAN_CC_RANGE[0], PAN_CC_RANGE[1] + 1, size=info.parts))
    velocities = tuple(int(v) for v in rng.integers(VELOCITY_RANGE[0], VELOCITY_RANGE[1] + 1, size=info.parts))
    length_ql = seconds * tempo * info.beat_ql / 60.0
    start = _choose_segment(rng, score, length_ql)
    return Arrangement(info, ensemble, programs, pans, velocities, tempo, transpose, start)


def clip_notes(score: Score, arrangement: Arrangement, seconds: float, sample_rate: int) -> ClipNotes:
    """The notes sounding in the clip and its beats, timed at ``sample_rate`` Hz."""
    spq = arrangement.seconds_per_ql
    start_ql = arrangement.start_ql
    end_ql = start_ql + seconds / spq
    note_end = score.onset + score.duration
    keep = (note_end > start_ql + 1e-9) & (score.onset < end_ql - 1e-9)
    onset = score.onset[keep]

    def to_samples(ql: np.ndarray) -> np.ndarray:
        return np.round((ql - start_ql) * spq * sample_rate).astype(np.int64)

    part = score.part[keep].astype(np.int64)
    beats = score.beats[(score.beats >= start_ql - 1e-9) & (score.beats < end_ql - 1e-9)]
    return ClipNotes(
        part=part,
        pitch=score.pitch[keep].astype(np.int64) + arrangement.transpose,
        velocity=np.asarray(arrangement.velocities, dtype=np.int64)[part],
        start=np.maximum(to_samples(onset), 0),
        end=to_samples(note_end[keep]),
        in_clip=onset >= start_ql - 1e-9,
        beats=np.round((beats - start_ql) * spq * sample_rate) / sample_rate,
    )


def pan_position(cc: int) -> float:
    """CC 10 value to a position in [-1, 1] (-1 left, 0 centre), 3 decimals."""
    return round((cc - 64) / 63.0, 3)


def _register_ranks(score: Score) -> list[int]:
    """Rank of each part by mean pitch, 0 = highest; parts without notes rank lowest."""
    means = [float(score.pitch[score.part == p].mean()) if (score.part == p).any() else -1.0
             for p in range(score.info.parts)]
    order = sorted(range(len(means)), key=lambda p: (-means[p], p))
    ranks = [0] * len(means)
    for r, p in enumerate(order):
        ranks[p] = r
    return ranks


def assign_programs(rng: np.random.Generator, ensemble: str, ranks: list[int]) -> tuple[int, ...]:
    n = len(ranks)
    if ensemble == "mixed":
        pools = [MIXED_POOLS[_register(r, n)] for r in ranks]
        return tuple(int(pool[int(rng.integers(len(pool)))]) for pool in pools)
    palette = ENSEMBLES[ensemble]
    if len(palette) == 1 or n == 1:
        return tuple(palette[0] for _ in ranks)
    return tuple(palette[-1] if r == n - 1 else palette[min(r, len(palette) - 2)] for r in ranks)


def _register(rank: int, n: int) -> int:
    """0 top, 1 middle, 2 bottom for a part ranked ``rank`` of ``n``."""
    if rank == 0:
        return 0
    return 2 if rank == n - 1 else 1


def _choose_segment(rng: np.random.Generator, score: Score, length_ql: float) -> float:
    end_ql = score.info.end_ql
    candidates = score.bar_starts[score.bar_starts + length_ql <= end_ql + 1e-9]
    if not candidates.size:
        raise ValueError(f"{score.info.key}: no bar start leaves {length_ql:g} quarter lengths of music")
    best, best_cover = float(candidates[0]), -1.0
    for start in rng.permutation(candidates):
        cover = sounding_fraction(score, float(start), float(start) + length_ql)
        if cover >= MIN_COVERAGE:
            return float(start)
        if cover > best_cover:
            best, best_cover = float(start), cover
    return best


def sounding_fraction(score: Score, a: float, b: float) -> float:
    """Fraction of [a, b) during which at least one note sounds."""
    end = score.onset + score.duration
    inside = (score.onset < b) & (end > a)
    lo = np.clip(score.onset[inside], a, b)
    hi = np.clip(end[inside], a, b)
    order = np.argsort(lo, kind="stable")
    covered, reach = 0.0, a
    for x, y in zip(lo[order], hi[order]):
        if y > reach:
            covered += y - max(x, reach)
            reach = y
    return covered / (b - a)
