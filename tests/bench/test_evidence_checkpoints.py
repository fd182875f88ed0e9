"""The studies verify their weight files like every other path: a corrupt evaluator checkpoint is
refused (it loaded unchecked whenever --checkpoint was given) unless --no-verify, and a file that
is not a VAE given to `evidence autoencoder --vae` is one line (it was a load_state_dict traceback)."""

from pathlib import Path

import pytest

from t2mbench.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def flipped_evaluator(tmp_path):
    data = bytearray((ROOT / "metrics" / "embedders" / "checkpoints" / "evaluator.safetensors").read_bytes())
    data[-50] ^= 1
    (tmp_path / "ev.safetensors").write_bytes(bytes(data))
    return tmp_path / "ev.safetensors"


@pytest.mark.parametrize("study, out", [("retrieval", "r.json"), ("degradation", "d")])
def test_a_corrupt_evaluator_checkpoint_is_refused(flipped_evaluator, tmp_path, capsys, study, out):
    argv = ["evidence", study, "--corpus", str(tmp_path / "corpus"), "--checkpoint", str(flipped_evaluator),
            "--out", str(tmp_path / out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench evidence: error: {flipped_evaluator}: sha256 ") and err.count("\n") == 1
    assert "does not match the published" in err and "pass --no-verify" in err
    assert not (tmp_path / out).exists()
    assert main([*argv, "--no-verify"]) == 2  # verified no longer: it gets as far as the missing corpus
    assert capsys.readouterr().err.endswith(f"{tmp_path / 'corpus'}: no such manifest file or folder\n")


def test_a_file_that_is_not_a_vae_is_one_line(flipped_evaluator, tmp_path, capsys):
    argv = ["evidence", "autoencoder", "--corpus", str(tmp_path / "corpus"), "--vae", str(flipped_evaluator),
            "--out", str(tmp_path / "a")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2mbench evidence: error: {flipped_evaluator}: not a VAE of tiny (")
    assert err.count("\n") == 1
    assert err.endswith("pass the ema.safetensors of a `t2mbench train vae` run on this config\n")
    assert not (tmp_path / "a").exists()
