"""The committed board: the tiny model's sampler x steps cells from ``t2mbench demo`` plus the
seed's published tables. One command rebuilds it on a fresh clone, byte for byte."""

from pathlib import Path

import pandas as pd
import pytest

import t2mbench.leaderboards
from t2mbench.cli import main
from t2mbench.core.files import read_json
from t2mbench.core.ownership import OWNER_FILE
from t2mbench.leaderboards import store, submission

BOARD = Path(t2mbench.leaderboards.__file__).parent / "boards" / "tiny-sampler-steps"


def test_one_command_rebuilds_the_committed_board_byte_for_byte(tmp_path):
    assert main(["leaderboard", "build", str(BOARD), "--out", str(tmp_path)]) == 0
    # the board's files; the owner record (which command claimed the folder) is not part of the board, and an
    # installed wheel does not carry the committed one
    committed = sorted(p.relative_to(BOARD / "rendered") for p in (BOARD / "rendered").rglob("*")
                       if p.is_file() and p.name != OWNER_FILE)  # fmt: skip
    rebuilt = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and p.name != OWNER_FILE)
    assert committed == rebuilt and len(committed) >= 4 + 6
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (BOARD / "rendered" / rel).read_bytes(), rel


def test_the_committed_board_holds_the_demo_cells_under_one_protocol_and_marks_published_rows():
    spec = store.read_board(BOARD)
    items = store.entries(BOARD)
    names = sorted(doc["system"]["name"] for _, doc, _ in items)
    assert names == sorted(f"tiny {s}-{n}" for s in ("ddim", "ddpm", "euler") for n in (10, 50))
    for sid, doc, _ in items:
        assert submission.check(BOARD / "submissions" / sid) == []
        assert submission.protocol_differences(spec["protocol"], doc["protocol"]) == []
    data = read_json(BOARD / "rendered" / "ranking.json")
    for s in data["systems"]:  # the KL column is the mean of the submitted per-clip scores
        t = pd.read_csv(BOARD / "submissions" / s["id"] / "scores.csv")
        clips = t[(t["metric"] == "kl_evaluator") & (t["kind"] == "clip")]["value"]
        assert len(clips) == spec["protocol"]["eval_set"]["clips"]
        assert s["metrics"]["kl_evaluator"]["value"] == pytest.approx(clips.mean(), rel=1e-12)
    published = read_json(BOARD / "published.json")
    assert published["status"] == "published" and all(t["source"] for t in published["tables"])
    html = (BOARD / "rendered" / "site" / "index.html").read_text(encoding="utf-8")
    assert html.count('<span class="tag">published</span>') == len(published["tables"])
    assert "Stable Audio Open" in html and "Song et al." in html
    assert "<td>123.30</td>" in html and "<td>45.20</td>" in html  # as published, trailing zeros kept
