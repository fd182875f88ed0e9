"""``t2mbench score --preset paper-2026`` end to end with seeded random weights placed in the weights folder.

What was chosen and why: the published checkpoints of the preset's networks (PaSST-S, two LAION-CLAP files,
MERT-v1-95M and -330M, WavLM-base Audiobox) hold about 1.5 billion values; seeded full-size copies would write
gigabytes and run for minutes on two cores. So every weight file is written where the loaders look for the
published one (``$T2MBENCH_HOME/weights/<filename>``, through the project's ``T2MBENCH_HOME`` setting), in the
published format and key layout, at reduced sizes (:mod:`support.preset_weights`): the loaders read a network's
sizes from the checkpoint's shapes (MERT, PaSST, LAION-CLAP, Audiobox; each network's full-size key layout is
proven against the upstream manifest by its own tests, which keep passing), and OpenL3, 4.7 M values, is written
full size as the published gzipped Keras file. The run is the real CLI with ``--no-verify`` (the seeded files
cannot match the published sha256s; keys and shapes are still checked). About 80 MB written, about 35 s on two
cores.

It proves: every metric of the preset is computed from those files, each embedder loaded from the registered
place; ``summary.json`` records each file's sha256 and marks it ``unpublished`` where a published hash exists
(``no published sha256`` where upstream publishes none: MERT, Audiobox); and values equal the functional API on
the embedders' own outputs for the clips (MAD, KAD and FAD on MERT, two Audiobox axes), so a wrong preprocessing,
pooling, embedder sharing or set order in the preset path would show.
"""

import json

import numpy as np
import pytest
import torch
from support.preset_weights import write_preset_weights
from support.scoring_sets import write_pair

from t2mbench.cli import main
from t2mbench.core.audio import load_audio
from t2mbench.core.files import sha256_file
from t2mbench.metrics import frechet_distance, kernel_audio_distance, music_audio_distance
from t2mbench.metrics.embedders import get_embedder
from t2mbench.metrics.presets import PRESETS

STATUS = {"openl3": "unpublished", "passt": "unpublished", "clap": "unpublished", "clap_music": "unpublished",
          "mert": "no published sha256", "mert_330m": "no published sha256",
          "audiobox_aesthetics": "no published sha256"}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("preset")
    mp = pytest.MonkeyPatch()
    mp.setenv("T2MBENCH_HOME", str(root / "home"))
    paths = write_preset_weights(root / "home" / "weights")
    gen, ref = write_pair(root, n=4, seconds=1.0)
    argv = ["score", "--generated", str(gen), "--reference", str(ref), "--preset", "paper-2026", "--no-verify",
            "--out", str(root / "s"), "--no-cache"]
    for name in ("fd_openl3", "fad_mert", "fad_clap_music", "kad_openl3", "kad_mert", "kad_clap_music"):
        argv += ["--set", f"{name}.ci_resamples=0"]
    code = main(argv)
    summary = json.loads((root / "s" / "summary.json").read_text())
    yield code, summary, paths, gen, ref
    mp.undo()


def test_every_preset_metric_is_computed_from_the_placed_files(run):
    code, summary, paths, _, _ = run
    assert code == 0
    assert sorted(summary["metrics"]) == sorted(PRESETS["paper-2026"]) and len(PRESETS["paper-2026"]) == 13
    for name, m in summary["metrics"].items():
        assert np.isfinite(m["value"]), name
        assert m["n_clips"] == 4, name
        (embedder, sha), = m["weights"].items()
        assert sha == sha256_file(paths[embedder]), name
        assert m["weights_status"] == {embedder: STATUS[embedder]}, name
    assert summary["metrics"]["mad"]["settings"]["embedder_settings"]["model"] == "MERT-v1-330M"
    assert summary["metrics"]["fad_mert"]["settings"]["embedder_settings"]["model"] == "MERT-v1-95M"


def _decoded(folder):
    out = {}
    for path in sorted(folder.glob("*.wav")):
        audio, sr = load_audio(path)
        out[path.stem] = (torch.from_numpy(audio)[None], sr)
    return out


def test_values_equal_the_functional_api_on_the_embedders_outputs(run):
    code, summary, _, gen, ref = run
    assert code == 0
    clips = {"gen": _decoded(gen), "ref": _decoded(ref)}
    values = {k: m["value"] for k, m in summary["metrics"].items()}

    def embed(name):
        emb = get_embedder(name, verify=False)
        return {side: [emb.embed(a, sr)[0].numpy() for a, sr in clips[side].values()] for side in clips}

    mert = embed("mert")
    gen_frames, ref_frames = np.concatenate(mert["gen"]), np.concatenate(mert["ref"])
    assert values["fad_mert"] == pytest.approx(frechet_distance(gen_frames, ref_frames), rel=1e-5)
    assert values["kad_mert"] == pytest.approx(kernel_audio_distance(ref_frames, gen_frames), rel=1e-5)
    mad = embed("mert_330m")  # one max-pooled vector per clip, generated ids in sorted order
    pooled = {side: np.stack([f.max(axis=0) for f in frames]) for side, frames in mad.items()}
    assert values["mad"] == pytest.approx(music_audio_distance(pooled["gen"], pooled["ref"]), rel=1e-6)
    scores = embed("audiobox_aesthetics")["gen"]  # [CE, CU, PC, PQ] per clip
    assert values["aesthetics_pq"] == pytest.approx(float(np.mean([s[3] for s in scores])), rel=1e-5)
    assert values["aesthetics_ce"] == pytest.approx(float(np.mean([s[0] for s in scores])), rel=1e-5)
