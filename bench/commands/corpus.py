"""``t2mbench corpus``: build the rendered-score benchmark corpus, or check any clip set."""

from __future__ import annotations

import argparse
import os

from t2mbench.core.cli_format import COUNT, POSITIVE, SEED

EPILOG = """\
actions:
  build   render public-domain pieces from music21's corpus (Bach chorales, Palestrina,
          Monteverdi, Haydn/Mozart/Beethoven/Schumann quartets, folk-tune collections, ...)
          with the General MIDI soundfont inside pretty_midi, through tinysoundfont, into
          stereo 44.1 kHz clips; instruments, tempo, transposition and pan vary per clip
          from the seed. Writes OUT/audio/*.wav, OUT/truth/*.npz (melody, beats, tempo,
          loudness curve, programs), OUT/manifest.jsonl + manifest.parquet (captions,
          attributes, train/test split by piece) and OUT/provenance.json. The same
          arguments give byte-identical audio and manifest; rerunning a killed build
          resumes it. Needs tinysoundfont: pip install --no-deps tinysoundfont
  check   validate a clip set (a built corpus or an external set) and print a summary.
          An external set is a folder of audio plus ONE .csv or .jsonl table with
          columns id, caption and optionally path (relative to the table, or absolute);
          without path the audio is <folder>/<id>.wav (or .flac/.ogg/.mp3). Every audio
          file must be named by a row and ids must be unique; missing, duplicate or
          unmatched ids are errors that list them. This is how MusicCaps or Song
          Describer come in, e.g. musiccaps/captions.csv ("id,caption") beside
          musiccaps/<id>.wav files.

examples:
  t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0
  t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0 --workers 2
  t2mbench corpus check corpus
  t2mbench corpus check musiccaps/captions.csv
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from t2mbench.core.cli_format import HelpFormatter

    parser = subparsers.add_parser(
        "corpus",
        help="build the rendered-score benchmark corpus, or check a clip set",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=EPILOG,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="render the corpus",
        description="Render the benchmark corpus (see `t2mbench corpus --help`).",
        formatter_class=HelpFormatter,
        epilog="example:\n  t2mbench corpus build --out corpus --clips 64 --seconds 10 --seed 0",
    )
    build.add_argument("--out", default="corpus", metavar="DIR", help="output folder (a killed build there resumes)")
    build.add_argument("--clips", type=COUNT, default=64, help="number of clips")
    build.add_argument("--seconds", type=POSITIVE, default=10.0, help="clip length in seconds")
    build.add_argument("--seed", type=SEED, default=0, help="seed of every random choice")
    build.add_argument("--split", choices=("train", "test"), default=None,
                       help="render only clips of this split (the same clips a full build would make)")
    build.add_argument("--workers", type=COUNT, default=min(2, os.cpu_count() or 1),
                       help="processes to render in (the output does not depend on it)")
    build.add_argument("--overwrite", action="store_true", help="take over a folder another command or other "
                       "settings own")
    build.set_defaults(func=run_build)
    check = actions.add_parser(
        "check",
        help="validate a clip set and print a summary",
        description="Validate a built corpus or an external set (see `t2mbench corpus --help` for the format).",
        formatter_class=HelpFormatter,
        epilog="examples:\n  t2mbench corpus check corpus\n  t2mbench corpus check musiccaps/captions.csv",
    )
    check.add_argument("path", metavar="PATH", help="corpus folder, manifest (.jsonl/.csv/.parquet) or audio folder")
    check.add_argument("--no-hash", action="store_true", help="skip verifying the audio files' sha256")
    check.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    from t2mbench.bench.corpus import OWNER, build_corpus, owner_settings
    from t2mbench.bench.corpus.check import check_set
    from t2mbench.core.ownership import owning

    settings = owner_settings(args.clips, args.seconds, args.seed, args.split)
    with owning(args.out, OWNER, settings, overwrite=args.overwrite):
        result = build_corpus(args.out, args.clips, args.seconds, args.seed, workers=args.workers, split=args.split)
    print(f"built {len(result.clips)} clips in {result.out} ({len(result.rendered)} rendered, "
          f"{len(result.reused)} reused from an earlier run)")
    if result.differing_pieces:
        print(f"note: this music21 parses {len(result.differing_pieces)} piece(s) differently from the piece table; "
              "see provenance.json")
    print(check_set(result.out).text())
    return 0


def run_check(args: argparse.Namespace) -> int:
    from t2mbench.bench.corpus.check import check_set

    print(check_set(args.path, verify_hashes=not args.no_hash).text())
    return 0
