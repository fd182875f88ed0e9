"""t2mbench.metrics.upstream.parity: argument checks, the upstream-python check, runner failures, output shapes and the
metric each embedder compares (the whole comparison runs in tests/bench/test_cli_metrics.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from t2mbench.core.audio import save_audio
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.frechet import frechet_distance
from t2mbench.metrics.upstream.parity import UPSTREAMS, _per_file, missing_modules, run_parity


def test_unknown_embedder_lists_the_known_ones():
    with pytest.raises(ConfigError, match="no upstream parity for embedder 'vggish'; known: openl3, passt, clap"):
        run_parity("vggish", ["a.wav"])


def test_one_text_per_file():
    with pytest.raises(ConfigError, match="got 1 texts for 2 audio files; give one text per file"):
        run_parity("clap", ["a.wav", "b.wav"], texts=["piano"])


def test_missing_modules_names_only_the_absent_ones():
    assert missing_modules(sys.executable, ["numpy", "json", "t2mbench_no_such_module"]) == ["t2mbench_no_such_module"]


def test_an_upstream_python_that_does_not_run(tmp_path):
    runner = Path(__file__).resolve().parents[2] / "tools" / "upstream" / "passt_runner.py"  # a wheel lacks it
    with pytest.raises(ConfigError, match=r"--upstream-python .*nopython: cannot run it"):
        run_parity("passt", ["a.wav"], upstream_python=str(tmp_path / "nopython"), runner=runner)


def test_runner_not_found(tmp_path):
    with pytest.raises(ConfigError, match=r"upstream runner .*none\.py not found; pass --runner"):
        run_parity("passt", ["a.wav"], runner=tmp_path / "none.py")


def test_a_failing_runner_reports_its_last_error_line(tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text("import sys\nprint('loading', file=sys.stderr)\nsys.exit('boom: unexpected key head.2.weight')\n")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not read: the runner fails first")
    clip = save_audio(tmp_path / "a.wav", np.full((1, 8000), 0.1, np.float32), 32000)
    message = r"upstream runner .*runner\.py failed under .* \(exit 1\): boom: unexpected key head\.2\.weight$"
    with pytest.raises(ConfigError, match=message):
        run_parity("passt", [clip], checkpoint=weights, verify=False, runner=runner)


def test_outputs_are_regrouped_per_file_and_shapes_checked():
    groups = [(32000, [0, 2], np.zeros((2, 1, 10))), (44100, [1], np.zeros((1, 2, 10)))]
    ours_out = [{"embeddings": np.array([[0.0], [2.0]])}, {"embeddings": np.array([[1.0]])}]
    theirs_out = [{"embeddings": np.array([[0.5], [2.5]])}, {"embeddings": np.array([[1.5]])}]
    ours, theirs = _per_file(groups, ours_out, theirs_out, "r.py")
    assert [x.tolist() for x in ours["embeddings"]] == [[0.0], [1.0], [2.0]]
    assert [x.tolist() for x in theirs["embeddings"]] == [[0.5], [1.5], [2.5]]
    one = [(44100, [0], np.zeros((1, 2, 10)))]
    with pytest.raises(ConfigError, match=r"r\.py returned embeddings of shape \(1, 2\), ours are \(1, 1\)"):
        _per_file(one, ours_out[1:], [{"embeddings": np.zeros((1, 2))}], "r.py")
    with pytest.raises(ConfigError, match=r"r\.py returned text_embeddings of shape nothing, ours are \(1, 1\)"):
        _per_file(one, [{**ours_out[1], "text_embeddings": np.zeros((1, 1))}], theirs_out[1:], "r.py")


def test_kl_is_the_mean_over_ordered_pairs_of_sam_kl():
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=527) * 3 for _ in range(3)]
    p = [np.exp(x) / np.exp(x).sum() for x in logits]
    expected = np.mean([np.sum(p[i] * np.log(p[i] / (p[j] + 1e-6))) for i in range(3) for j in range(3) if i != j])
    assert UPSTREAMS["passt"].score(logits, []) == pytest.approx(expected, rel=1e-9)


def test_fd_compares_the_frames_of_the_first_half_of_the_files_with_the_rest():
    rng = np.random.default_rng(1)
    files = [rng.normal(size=(40, 8)) + k for k in range(3)]
    expected = frechet_distance(np.concatenate(files[:2]), files[2])
    assert UPSTREAMS["openl3"].score(files, []) == pytest.approx(expected, rel=1e-12)


def test_clap_score_is_the_mean_cosine_with_each_files_text():
    audio = [np.array([3.0, 4.0]), np.array([1.0, 0.0])]
    text = [np.array([1.0, 0.0]), np.array([0.0, 2.0])]
    assert UPSTREAMS["clap"].score(audio, text) == pytest.approx(0.3)


def test_the_runners_live_outside_the_package_and_a_checkout_finds_them():
    from t2mbench.metrics.upstream import parity

    root = Path(__file__).resolve().parents[2]
    assert all((root / "tools" / "upstream" / up.runner).is_file() for up in UPSTREAMS.values())
    assert not list((root / "metrics" / "upstream").glob("*_runner.py"))
    if Path(parity.__file__).resolve().is_relative_to(root / "metrics"):  # the checkout's source (editable install)
        assert parity.UPSTREAM_DIR == root / "tools" / "upstream"


def test_without_a_checkout_the_missing_runner_is_one_line(tmp_path, monkeypatch):
    from t2mbench.metrics.upstream import parity

    monkeypatch.setattr(parity, "UPSTREAM_DIR", tmp_path / "site-packages" / "tools" / "upstream")
    with pytest.raises(ConfigError) as e:
        run_parity("passt", ["a.wav"])
    assert str(e.value) == (
        "the upstream runner passt_runner.py is not installed with t2mbench (it imports the upstream packages, so it "
        "stays in the source repository's tools/upstream/): pass --runner CHECKOUT/tools/upstream/passt_runner.py"
    )
