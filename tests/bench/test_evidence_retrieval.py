import numpy as np
import pytest
import torch
from support.evaluator_clips import tiny_corpus

from t2mbench.bench.corpus.splits import split_clips
from t2mbench.bench.evidence.retrieval import (
    average_precision,
    embed_clips,
    evaluate,
    multi_label_scores,
    recall_at_k,
    single_label_scores,
)
from t2mbench.core.errors import ManifestError
from t2mbench.core.manifest import ClipRecord
from t2mbench.metrics.embedders.evaluator import AttributeHead, load_evaluator


def test_recall_at_k_counts_ties_for_the_caption():
    sim = torch.tensor([[0.9, 0.1, 0.2], [0.8, 0.5, 0.5], [0.3, 0.4, 0.1]])
    # ranks of the true clip: 0; 1 (0.8 beats it, the 0.5 tie does not); 2
    assert recall_at_k(sim, (1, 2, 3)) == {1: 1 / 3, 2: 2 / 3, 3: 1.0}
    with pytest.raises(ValueError, match=r"similarity must be square \[N, N\], got \(2, 3\)"):
        recall_at_k(torch.zeros(2, 3))


def test_average_precision():
    # positives at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="needs at least one positive"):
        average_precision(np.array([0.1]), np.array([0]))


def _clip(i, **attributes):
    return ClipRecord(id=str(i), path=f"{i}.wav", caption="c", attributes=attributes)


def test_single_label_scores():
    head = AttributeHead("mode", "single", ("major", "minor"))
    clips = [_clip(0, mode="major"), _clip(1, mode="minor"), _clip(2, mode="minor"), _clip(3), _clip(4, mode="dorian")]
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 9.0], [1.0, 0.0]])
    assert single_label_scores(head, logits, clips) == {
        "clips": 4, "accuracy": 0.5, "chance_uniform": 0.5, "majority": 0.5, "unseen": 1,
    }  # fmt: skip


def test_multi_label_scores():
    head = AttributeHead("families", "multi", ("brass", "keyboard", "strings"))
    clips = [_clip(0, families=["strings"]), _clip(1, families=["keyboard", "strings"]), _clip(2, families=["brass"])]
    logits = torch.tensor([[-1.0, -2.0, 3.0], [-1.0, 0.5, 0.2], [-0.5, 1.0, -3.0]])
    got = multi_label_scores(head, logits, clips)
    assert multi_label_scores(head, logits, [_clip(9)]) == {"clips": 0}
    # AP: brass 1/1 (clip 2 ranks first), keyboard 1/2 (clip 1 ranks second), strings 1
    assert got == {
        "clips": 3, "exact_set_accuracy": 2 / 3, "majority_set": 1 / 3,
        "mean_average_precision": pytest.approx((1.0 + 0.5 + 1.0) / 3),
        "chance_average_precision": pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3), "unseen": 0,
    }  # fmt: skip


def test_evaluate_on_a_tiny_corpus(tmp_path):
    corpus = tiny_corpus(tmp_path, n_train=2, n_test=4)
    ev = load_evaluator()
    result = evaluate(corpus, "test", embedder=ev, progress=False)
    clips = split_clips(corpus, "test")
    out = embed_clips(ev, clips, progress=False)
    sim = out.text @ out.clip.T
    assert result["clips"] == 4 and result["weights_sha256"] == ev.weights_sha256
    assert result["retrieval"] == {
        "recall@1": recall_at_k(sim, (1,))[1], "recall@10": 1.0, "chance@1": 0.25, "chance@10": 1.0,
    }  # fmt: skip
    assert result["clap_evaluator"]["matched"] == pytest.approx(float(sim.diagonal().mean()), abs=1e-6)
    assert result["attributes"]["mode"]["clips"] == 4 and result["attributes"]["mode"]["majority"] == 0.5
    with pytest.raises(ManifestError, match="no clips in split 'valid'"):
        split_clips(corpus, "valid")
