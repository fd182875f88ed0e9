import pytest

from t2mbench.cli import main
from t2mbench.core.files import sha256_file
from t2mbench.core.weights import get


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    return tmp_path


def test_list_shows_names_state_destination_and_url(capsys, home):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("passt "))
    assert "missing" in line and str(home / "weights" / "passt-s-f128-p16-s10-ap.476-swa.pt") in line
    assert "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/" in out
    for name in ("evaluator", "tiny"):
        assert next(x for x in out.splitlines() if x.startswith(name + " ")).split()[1] == "bundled"
    for name in ("openl3-mel256-music", "clap", "sao-1.0"):
        assert any(x.startswith(name + " ") for x in out.splitlines()), name


def test_verify_flags_a_wrong_file_and_passes_the_bundled_evaluator(capsys, home):
    bad = home / "weights" / "passt-s-f128-p16-s10-ap.476-swa.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    assert main(["weights", "verify", "passt", "evaluator"]) == 1
    out = capsys.readouterr().out
    assert "passt: MISMATCH" in out and "the file is truncated, corrupt or a different model" in out
    evaluator = get("evaluator")
    assert f"evaluator: ok sha256 {sha256_file(evaluator.bundled)}" in out


def test_verify_reports_missing_files(capsys):
    assert main(["weights", "verify", "openl3-mel256-music"]) == 1
    assert "openl3-mel256-music: MISSING" in capsys.readouterr().out


def test_unknown_name_is_one_line_and_exit_2(capsys):
    assert main(["weights", "fetch", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "t2mbench weights: error: unknown weights nope; `t2mbench weights list` shows the known names\n"


def test_fetch_without_network_says_where_to_put_the_file(capsys, home, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["weights", "fetch", "passt"]) == 2
    err = capsys.readouterr().err
    assert "expected passt-s-f128-p16-s10-ap.476-swa.pt at " + str(home / "weights") in err
    assert "download failed: network unreachable" in err


def _listed_names(out: str) -> set[str]:
    return {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}


@pytest.mark.parametrize("plugin", [False, True])
def test_list_shows_the_weights_of_every_registered_embedder(capsys, monkeypatch, plugin):
    """Computed from the embedder registry, so a new embedder (built-in or plugin) is covered."""
    from importlib import metadata

    from t2mbench.core import plugins
    from t2mbench.metrics import embedders as registry

    if plugin:
        ep = metadata.EntryPoint("toy", "support.plugin_embedder:SPEC", "t2mbench.embedders")
        monkeypatch.setattr(plugins, "entry_points", lambda group: [ep] if group == "t2mbench.embedders" else [])
        monkeypatch.setattr(registry.REGISTRY, "_cache", None)
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    listed = _listed_names(out)
    for name, spec in registry.embedders().items():
        files = spec.weight_files()
        assert files, f"embedder {name!r} declares no weight files"
        assert {wf.name for wf in files} <= listed, name
        assert all(wf.licence for wf in files), name
    assert ("toy-plugin" in listed) is plugin
    if plugin:
        assert "licence: CC0-1.0 (the toy plugin)" in out


def test_list_shows_the_music_metric_weights_with_their_licences(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name, filename, licence in [
        ("mert-v1-95m", "MERT-v1-95M/pytorch_model.bin", "licence: CC-BY-NC-4.0 (m-a-p/MERT-v1-95M): non-commercial"),
        ("mert-v1-330m", "MERT-v1-330M/pytorch_model.bin",
         "licence: CC-BY-NC-4.0 (m-a-p/MERT-v1-330M): non-commercial"),
        ("audiobox-aesthetics", "audiobox-aesthetics/checkpoint.pt", "licence: CC-BY-4.0"),
        ("clap-music-audioset", "music_audioset_epoch_15_esc_90.14.pt", "licence: CC0-1.0"),
        ("clap-music-speech-audioset", "music_speech_audioset_epoch_15_esc_89.98.pt", "licence: CC0-1.0"),
    ]:
        lines = out.splitlines()
        i = next(k for k, line in enumerate(lines) if line.split()[:1] == [name])
        entry = [lines[i], *lines[i + 1 : i + 4]]  # name line, description, URL, licence
        assert "missing" in entry[0] and str(tmp_path / "weights" / filename) in entry[0]
        assert any(line.strip().startswith(licence) for line in entry), entry
