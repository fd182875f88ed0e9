"""``t2mbench evidence ap-adapter``: the two arms of each clip differ only in the audio prompt, so with λ 0 (both
arms the base model) the difference is exactly zero, and with λ 1 the prompt moves them apart; the JSON it writes
is what it prints."""

import json

from support.evaluator_clips import tiny_corpus

from t2mbench.cli import main


def test_at_lambda_zero_both_arms_are_the_same_generation(tmp_path, capsys):
    corpus = tiny_corpus(tmp_path / "corpus", n_train=1, n_test=2)
    out = tmp_path / "ap.json"
    assert main(["evidence", "ap-adapter", "--corpus", str(corpus), "--scale", "0", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert (result["weights"], result["scale"], result["pool"], result["clips"]) == (None, 0.0, 2, 2)
    assert result["own"] == result["other"] and result["difference"] == 0.0 and result["ci"] == [0.0, 0.0]
    assert main(["evidence", "ap-adapter", "--corpus", str(corpus), "--scale", "1", "--out", str(out)]) == 0
    prompted = json.loads(out.read_text())
    assert prompted["own"] != prompted["other"] and prompted["own"] != result["own"]
