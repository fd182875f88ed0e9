"""Presets (`t2mbench score --preset`): resolution against the registry, one pass per clip and embedder,
and missing weights listed (an error) or skipped (a warning each), never a silent gap."""

import json

import pytest
from support.scoring_sets import write_pair
from support.stand_in_embedder import StandInEmbedder

from t2mbench.cli import main
from t2mbench.core.errors import ConfigError, MissingWeightsError
from t2mbench.metrics.cache import EmbeddingCache
from t2mbench.metrics.embedders import EmbedderSpec
from t2mbench.metrics.presets import PRESETS, drop_missing_weights, resolve_preset
from t2mbench.metrics.registry import available, get_metric
from t2mbench.metrics.scoring import score

# Names of paper-2026 not registered yet (none: every name of the preset must be registered).
PENDING: set[str] = set()
OUTPUTS = {"openl3": "frames", "passt": "logits", "clap": "vector", "evaluator": "frames", "mert": "frames",
           "mert_330m": "frames",
           "audiobox": "logits"}
DIMS = {"audiobox": 4}  # the four aesthetics axes


def test_paper_2026_resolves_except_the_pending_names():
    registered, unregistered = resolve_preset("paper-2026")
    assert len(PRESETS["paper-2026"]) == 13
    assert set(unregistered) == PENDING & set(PRESETS["paper-2026"])
    assert registered == [m for m in PRESETS["paper-2026"] if m not in PENDING]
    assert set(registered) <= set(available())
    with pytest.raises(ConfigError, match="unknown preset 'paper'; known: paper-2026"):
        resolve_preset("paper")


@pytest.fixture
def stand_in_loads(monkeypatch):
    """Registered embedders load as stand-ins (no weights); ``loads`` counts the loads by name."""
    loads: dict[str, list[StandInEmbedder]] = {}

    def load(spec, checkpoint=None, **options):
        name = spec.module.rsplit(".", 1)[1]
        emb = StandInEmbedder(OUTPUTS[name], name=name, dim=DIMS.get(name, 8))
        loads.setdefault(name, []).append(emb)
        return emb

    monkeypatch.setattr(EmbedderSpec, "load", load)
    return loads


@pytest.mark.parametrize("use_cache", [False, True])
def test_each_clip_is_decoded_once_and_each_embedder_runs_once_per_clip(tmp_path, stand_in_loads, use_cache):
    gen, ref = write_pair(tmp_path, n=3)
    metrics = [get_metric(n, ci_resamples=0) for n in ("fd_openl3", "kad_openl3", "kl_passt", "clap")]
    run = score(gen, ref, metrics, tmp_path / "out", cache=EmbeddingCache(tmp_path / "cache"), use_cache=use_cache,
                progress=False)
    # one load per embedder although fd_openl3 and kad_openl3 both use OpenL3
    assert {k: len(v) for k, v in stand_in_loads.items()} == {"openl3": 1, "passt": 1, "clap": 1}
    # 3 generated + 3 reference clips, one embedder call each (clap and kl_passt read only the generated side)
    assert stand_in_loads["openl3"][0].calls == 6
    assert stand_in_loads["passt"][0].calls == 6 and stand_in_loads["clap"][0].calls == 3
    assert run.summary["timing"]["decodes"] == 6
    kad = run.summary["metrics"]["kad_openl3"]
    assert kad["protocol_version"] == "kadtk-kad-1" and kad["settings"]["embedder"] == "openl3"
    assert kad["weights"] == {"openl3": stand_in_loads["openl3"][0].weights_sha256}


def test_missing_weights_are_listed_with_their_fetch_command_or_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    metrics = [get_metric(n) for n in ("stft", "fd_openl3", "kad_openl3", "kl_passt")]
    with pytest.raises(MissingWeightsError) as e:
        drop_missing_weights(metrics, skip_missing=False)
    message = str(e.value)
    assert message.startswith("3 metrics lack weight files (pass --skip-missing to run the others): fd_openl3: ")
    assert "\n" not in message
    for name in ("fd_openl3", "kad_openl3", "kl_passt"):
        assert f"| {name}: " in message or message.count(f"{name}: weights") == 1
    assert message.count("t2mbench weights fetch openl3-mel256-music") == 2
    assert "t2mbench weights fetch passt" in message
    kept, warnings = drop_missing_weights(metrics, skip_missing=True)
    assert [m.name for m in kept] == ["stft"]
    assert [w.split(":")[0] for w in warnings] == ["skipped fd_openl3", "skipped kad_openl3", "skipped kl_passt"]
    assert all("t2mbench weights fetch" in w for w in warnings)
    with pytest.raises(MissingWeightsError, match=r"^weights 'passt.*\[metric kl_passt; pass --skip-missing"):
        drop_missing_weights([get_metric("stft"), get_metric("kl_passt")], skip_missing=False)


def test_cli_preset_skip_missing_runs_the_rest_and_warns_for_each_gap(tmp_path, stand_in_loads, capsys):
    gen, ref = write_pair(tmp_path, n=4)
    code = main(["score", "--generated", str(gen), "--reference", str(ref), "--preset", "paper-2026",
                 "--skip-missing", "--out", str(tmp_path / "s"), "--no-cache", "--set", "fd_openl3.ci_resamples=0",
                 "--set", "kad_openl3.ci_resamples=0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert set(summary["metrics"]) == set(PRESETS["paper-2026"]) - PENDING
    warned = [line.split(":")[1].strip().removeprefix("skipped ") for line in err.splitlines()
              if line.startswith("warning: skipped")]
    assert set(warned) == PENDING


def test_cli_preset_without_skip_missing_names_the_gaps(tmp_path, capsys, monkeypatch):
    """No weight file present: one line, exit 2, every metric of the preset that needs one named with the
    command that fetches it (mad's MERT-v1-330M included), and no output folder."""
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    gen, ref = write_pair(tmp_path, n=2)
    code = main(["score", "--generated", str(gen), "--reference", str(ref), "--preset", "paper-2026",
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "13 metrics lack weight files (pass --skip-missing to run the others): fd_openl3: " in err
    assert "| mad: weights 'mert-v1-330m' not found" in err and "t2mbench weights fetch mert-v1-330m" in err
    assert not (tmp_path / "s").exists()


def test_weights_status_tells_published_unpublished_and_unknown_hashes():
    from t2mbench.metrics.embedders import weights_status
    from t2mbench.metrics.embedders.passt import CHECKPOINT as PASST

    assert PASST.sha256 and weights_status("passt", PASST.sha256) == "published"
    assert weights_status("passt", "0" * 64) == "unpublished"
    assert weights_status("mert_330m", "0" * 64) == "no published sha256"  # MERT's hub files publish none here
    assert weights_status("vggish", "0" * 64) == "not registered"
