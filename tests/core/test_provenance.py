import json
import subprocess

import torch

from t2mbench import __version__
from t2mbench.core import provenance
from t2mbench.core.files import sha256_file


def test_record_has_versions_device_seeds_and_hashes(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"id": "a"}\n')
    rec = provenance.collect(seeds={"corpus": 3}, inputs={"manifest": manifest}, weights={"tiny-vae": "ab" * 32})
    assert rec["t2mbench_version"] == __version__
    assert rec["torch"] == torch.__version__
    assert rec["torch_threads"] == torch.get_num_threads()
    assert rec["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert rec["seeds"] == {"corpus": 3}
    assert rec["inputs"]["manifest"]["sha256"] == sha256_file(manifest)
    assert rec["weights"] == {"tiny-vae": "ab" * 32}
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=provenance._SOURCE_DIR)
    assert rec["git"]["commit"] == (head.stdout.strip() or None)


def test_write_puts_provenance_json_in_the_folder(tmp_path):
    path = provenance.write(tmp_path / "out", provenance.collect(extra={"cmd": "score"}))
    assert path == tmp_path / "out" / "provenance.json"
    assert json.loads(path.read_text())["extra"] == {"cmd": "score"}


def test_git_commit_outside_a_repo(tmp_path):
    assert provenance.git_commit(tmp_path) == {"commit": None, "dirty": None}
