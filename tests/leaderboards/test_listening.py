import json

import numpy as np
import pytest
from support import submissions as subs
from support.listening_runs import runs

from t2mbench.cli import main
from t2mbench.core.audio import load_audio, loudness
from t2mbench.core.files import read_json, write_json
from t2mbench.leaderboards import listening, store

TRUE_ELO = {"alpha": 1200.0, "beta": 1050.0, "gamma": 950.0, "delta": 800.0}  # mean 1000
TRUE_MOS = {"alpha": 4.2, "beta": 3.6, "gamma": 3.0, "delta": 2.0}


def listener(key, rng, name, attentive=True):
    """Answers drawn from the true strengths (Bradley-Terry) and true MOS; an inattentive
    listener prefers the degraded clip and rates it 5."""
    answers = []
    for item, k in key["items"].items():
        if k.get("attention"):
            if k["type"] == "ab":
                choice = k["expected"] if attentive else ("b" if k["expected"] == "a" else "a")
                answers.append({"item": item, "choice": choice})
            else:
                answers.append({"item": item, "ratings": {q: 1 if attentive else 5 for q in key["questions"]}})
        elif k["type"] == "ab":
            p = 1 / (1 + 10 ** ((TRUE_ELO[k["b"]] - TRUE_ELO[k["a"]]) / 400))
            answers.append({"item": item, "choice": "a" if rng.random() < p else "b"})
        else:
            r = {q: int(np.clip(round(TRUE_MOS[k["system"]] + rng.normal(0, 0.7)), 1, 5)) for q in key["questions"]}
            answers.append({"item": item, "ratings": r})
    return {"page_id": key["page_id"], "listener": name, "answers": answers, "played": []}


def test_make_writes_a_blinded_randomised_page_with_attention_checks(tmp_path):
    names = ["zyx <script>x</script>", "Bq", "Cq"]
    assert main(["listen", "make", *map(str, runs(tmp_path, ["a", "b", "c"])), "--out", str(tmp_path / "t"),
                 "--names", ",".join(names), "--clips", "3", "--seconds", "1"]) == 0  # fmt: skip
    key = read_json(tmp_path / "t" / "key.json")
    items = key["items"].values()
    ab = [k for k in items if k["type"] == "ab" and not k.get("attention")]
    mos = [k for k in items if k["type"] == "mos" and not k.get("attention")]
    assert len(ab) == 3 * 3 and len(mos) == 3 * 3  # 3 prompts x 3 pairs; 3 prompts x 3 systems
    assert [k["type"] for k in items if k.get("attention")] in (["ab", "mos"], ["mos", "ab"])
    assert {(k["a"], k["b"]) for k in ab} & {(k["b"], k["a"]) for k in ab}  # both sides occur
    order = [k["type"] for k in items]
    assert order != sorted(order) and order != sorted(order, reverse=True)  # shuffled
    page = tmp_path / "t" / "page"
    html = (page / "index.html").read_text()
    hidden = ("zyx", "Bq", "Cq", "<script>x", "clip0", "clip1")
    assert all(n not in html for n in hidden), "the page names no system or file"
    assert "\\u003cb\\u003e\\\"é\\\"\\u003c/b\\u003e" in html  # captions are data, never markup
    wavs = sorted(page.glob("audio/*.wav"))
    assert len(wavs) == 3 * 3 + 1
    levels = [loudness(*load_audio(w)) for w in wavs]
    assert levels == pytest.approx([-23.0] * len(wavs), abs=0.3)
    data = json.loads(html.split('id="data">')[1].split("</script>")[0])
    att = next(i for i, k in key["items"].items() if k.get("attention") and k["type"] == "ab")
    item = next(x for x in data["items"] if x["id"] == att)
    clean, bad = item[key["items"][att]["expected"]], item["b" if key["items"][att]["expected"] == "a" else "a"]
    x, _ = load_audio(page / "audio" / clean)
    y, _ = load_audio(page / "audio" / bad)
    noise = y - x * (np.abs(y).max() / np.abs(x).max())
    assert np.mean(noise**2) > 0.3 * np.mean(y**2), "the attention clip is obviously degraded"


def test_simulated_listeners_recover_the_true_order_with_covering_cis(tmp_path):
    names = list(TRUE_ELO)
    listening.make(runs(tmp_path, names, clips=4, seconds=0.6), tmp_path / "t", names=names, clips=4, seconds=None)
    key = read_json(tmp_path / "t" / "key.json")
    rng = np.random.default_rng(7)
    files = []
    for n in range(40):
        files.append(write_json(tmp_path / "answers" / f"l{n}.json", listener(key, rng, f"listener {n}")))
    for n in range(3):
        files.append(write_json(tmp_path / "answers" / f"bad{n}.json", listener(key, rng, f"bot {n}", False)))
    files.append(write_json(tmp_path / "answers" / "again.json", listener(key, rng, "listener 0")))
    out, board = tmp_path / "results.json", tmp_path / "board"
    for name in names:
        sub = subs.write(tmp_path / "s" / name, name, np.full(20, 0.3), np.ones(20), (1, 0, 2))
        if name == names[0]:
            store.init(board, sub, title="T")
        store.add(board, sub)
    assert main(["listen", "analyze", *map(str, files), "--key", str(tmp_path / "t" / "key.json"),
                 "--out", str(out), "--resamples", "300", "--board", str(board)]) == 0  # fmt: skip
    r = read_json(out)
    assert [e["listener"] for e in r["excluded"]] == ["bot 0", "bot 1", "bot 2", "listener 0"]
    assert all(len(e["reasons"]) == 2 for e in r["excluded"][:3])
    assert r["excluded"][3]["reasons"] == ["a second answer file from this listener (the first one counts)"]
    assert len(r["listeners"]) == 40 and r["votes"] == 40 * 4 * 6
    bt = r["columns"][0]["systems"]
    assert sorted(bt, key=lambda s: -bt[s]["value"]) == names  # the true order
    for s, true in TRUE_ELO.items():
        assert bt[s]["ci_low"] <= true <= bt[s]["ci_high"], (s, bt[s])
    assert np.mean([c["value"] for c in bt.values()]) == pytest.approx(1000.0)
    assert [bt[s]["rank"] for s in names] == [1, 2, 3, 4]
    mos = {c["key"]: c["systems"] for c in r["columns"][1:]}
    assert set(mos) == {"listen.mos.quality", "listen.mos.alignment", "listen.mos.musicality"}
    q = mos["listen.mos.quality"]
    assert sorted(q, key=lambda s: -q[s]["value"]) == names and all(q[s]["ratings"] == 40 * 4 for s in names)
    # the results enter the board as their own columns
    store.build(board)
    data = read_json(board / "rendered" / "ranking.json")
    assert [c["key"] for c in data["listening_columns"]][:2] == ["listen.bt_elo", "listen.mos.quality"]
    assert {s["name"]: s["listening"]["listen.bt_elo"]["value"] for s in data["systems"]} == pytest.approx(
        {s: bt[s]["value"] for s in names})
    assert "listening Elo (Bradley–Terry)" in (board / "rendered" / "board.md").read_text()


def test_bradley_terry_counts_a_tie_as_half_a_win_and_needs_min_votes(tmp_path):
    # one win and one tie: A's score share is 3/4, so the Elo gap is 400 * log10(3)
    e = listening.elo(np.array([[0, 1, 1.0], [0, 1, 0.5]]), 2)
    assert e[0] - e[1] == pytest.approx(400 * np.log10(3), abs=1e-3) and e.mean() == pytest.approx(1000)
    assert listening.elo(np.array([[0, 1, 0.5], [1, 0, 0.5]]), 2) == pytest.approx([1000, 1000])
    names = ["alpha", "beta"]
    listening.make(runs(tmp_path, names, clips=2, seconds=0.6), tmp_path / "t", names=names, clips=2, seconds=None)
    key = read_json(tmp_path / "t" / "key.json")
    f = write_json(tmp_path / "a.json", listener(key, np.random.default_rng(0), "x"))
    r = listening.analyze([f], tmp_path / "t" / "key.json", min_votes=3)
    assert r["columns"][0]["systems"] == {} and r["below_min_votes"] == {"alpha": 2, "beta": 2}
    r = listening.analyze([f], tmp_path / "t" / "key.json", min_votes=2, resamples=50)
    assert set(r["columns"][0]["systems"]) == {"alpha", "beta"} and r["below_min_votes"] == {}


def test_mos_intervals_resample_listeners_not_single_ratings():
    # listener 0 rates everything 5, listener 1 everything 1 (ten ratings each): resampling
    # listeners gives means of 1, 3 or 5, so the 95% interval is [1, 5]; resampling the twenty
    # ratings one by one would give a narrow interval around 3
    ratings = [(0, 5.0)] * 10 + [(1, 1.0)] * 10
    assert listening.listener_ci(ratings, 2, resamples=400, seed=0, confidence=0.95) == (1.0, 5.0)
    # a listener with no rating of this system counts as drawn but adds nothing
    assert listening.listener_ci([(0, 4.0), (0, 2.0)], 3, resamples=200, seed=0, confidence=0.95) == (3.0, 3.0)
