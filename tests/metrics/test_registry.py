"""The metric registry: every setting is checked when the metric is built (before any clip is
read), and third-party metrics and embedders join through entry points."""

from importlib import metadata

import pytest

from t2mbench.core import plugins
from t2mbench.core.errors import ConfigError
from t2mbench.metrics import embedders as embedder_registry
from t2mbench.metrics import registry
from t2mbench.metrics.embedders import embedder_spec, embedders
from t2mbench.metrics.registry import MetricSpec, available, get_metric
from t2mbench.metrics.sisdr import SISDR

FD_SETTINGS = (
    "method, ci_resamples, confidence, seed, per_song, fad_inf, fad_inf_min_n, fad_inf_steps, reference_stats, "
    "embedder, sample_rate, channels, peak_stage, peak_db, audio_output, text_output, resampler, checkpoint, "
    "embedder_options"
)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("kl_evaluator", {"audio_output": "attribute_logit"},
         "metric 'kl_evaluator': unknown audio_output 'attribute_logit'; use one of embed, attribute_logits, "
         "clip_embedding"),
        ("fd_openl3", {"methd": "eig"},
         f"metric 'fd_openl3': bad settings (unexpected keyword argument 'methd'); valid: {FD_SETTINGS}"),
        ("stft", {"ci_resamples": -1}, "metric 'stft': ci_resamples must be an integer >= 0, got -1"),
        ("fd_openl3", {"ci_resamples": -5}, "metric 'fd_openl3': ci_resamples must be an integer >= 0, got -5"),
        ("sisdr", {"seed": 1.5}, "metric 'sisdr': seed must be an integer >= 0, got 1.5"),
        ("kl_passt", {"confidence": 95}, "metric 'kl_passt': confidence must be a finite number > 0 and < 1, got 95"),
        ("fd_openl3", {"channels": 3}, "metric 'fd_openl3': channels must be 1 or 2, got 3"),
        ("fd_openl3", {"peak_stage": "input"},
         "metric 'fd_openl3': unknown peak_stage 'input'; use one of native, resampled"),
        ("fd_openl3", {"method": "svd"}, "metric 'fd_openl3': unknown method 'svd'; use one of cholesky, sqrtm, eig"),
        ("fd_openl3", {"fad_inf": "yes"}, "metric 'fd_openl3': fad_inf must be true or false, got 'yes'"),
        ("kl_passt", {"kind": "log"}, "metric 'kl_passt': unknown kind 'log'; use one of softmax, sigmoid"),
        ("clap", {"embedder": "openl3"},
         "metric 'clap': embedder 'openl3' has no text tower; a caption metric needs one"),
        ("clap_evaluator", {"text_output": "embed_txt"},
         "metric 'clap_evaluator': unknown text_output 'embed_txt'; use one of embed_text"),
        ("fd_openl3", {"embedder": "vggish"},
         "metric 'fd_openl3': unknown embedder 'vggish'; known: openl3, passt, clap, clap_music, mert, mert_330m, "
         "audiobox_aesthetics, evaluator"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_config_error_naming_metric_key_value_and_allowed(name, settings, message):
    with pytest.raises(ConfigError) as info:
        get_metric(name, **settings)
    assert str(info.value) == message


def test_every_registered_metric_builds_with_its_defaults_and_lists_its_settings():
    for name in available():
        metric = get_metric(name)
        assert metric.name == name
        assert set(metric.settings()) >= {"ci_resamples", "seed"}
        assert {"ci_resamples", "confidence", "seed"} <= set(type(metric).setting_names())


def test_evaluator_outputs_in_the_registry_are_methods_of_the_embedder():
    from t2mbench.metrics.embedders.evaluator import EvaluatorEmbedder

    spec = embedder_spec("evaluator")
    for method in (*spec.audio_outputs, *spec.text_outputs):
        assert callable(getattr(EvaluatorEmbedder, method)), method


def _plugins(monkeypatch, group_module, group: str, points: dict[str, str]) -> None:
    """Install entry points ``name -> "module:attribute"`` of ``group`` and forget the registry's cache."""
    eps = [metadata.EntryPoint(name, value, group) for name, value in sorted(points.items())]
    monkeypatch.setattr(plugins, "entry_points", lambda g: eps if g == group else [])
    monkeypatch.setattr(group_module.REGISTRY, "_cache", None)


LOUD = MetricSpec(SISDR, "a plugin metric (SI-SDR at 16 kHz)", {"sample_rate": 16_000})
NOT_A_SPEC = "not a MetricSpec"


def test_a_metric_plugin_is_registered_and_its_settings_checked(monkeypatch):
    _plugins(monkeypatch, registry, "t2mbench.metrics", {"loud": f"{__name__}:LOUD"})
    assert available()["loud"] == "a plugin metric (SI-SDR at 16 kHz)"
    assert get_metric("loud").settings()["sample_rate"] == 16_000
    with pytest.raises(ConfigError, match="^metric 'loud': zero_mean must be true or false, got 1$"):
        get_metric("loud", zero_mean=1)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ({"stft": f"{__name__}:LOUD"},
         f"metric plugin 'stft' ({__name__}:LOUD) repeats a built-in metric name; rename it"),
        ({"loud": f"{__name__}:NOT_A_SPEC"},
         f"metric plugin 'loud' ({__name__}:NOT_A_SPEC) is a str, not a MetricSpec"),
    ],
)  # fmt: skip
def test_a_metric_plugin_cannot_replace_a_built_in_name(monkeypatch, points, message):
    _plugins(monkeypatch, registry, "t2mbench.metrics", points)
    with pytest.raises(ConfigError) as info:
        available()
    assert str(info.value) == message
    with pytest.raises(ConfigError):  # still refused on the next call: nothing half-registered
        available()


def test_an_embedder_plugin_joins_the_registry_and_its_metrics(monkeypatch):
    from support.plugin_embedder import SPEC

    _plugins(monkeypatch, embedder_registry, "t2mbench.embedders", {"toy": "support.plugin_embedder:SPEC"})
    assert embedders()["toy"] is SPEC
    metric = get_metric("fd_openl3", embedder="toy")
    metric.prepare(None)
    assert metric.weights() == {"toy": metric.protocol.embedder.weights_sha256}
    with pytest.raises(ConfigError, match="^metric 'kl_passt': unknown audio_output 'logits'; use one of embed$"):
        get_metric("kl_passt", embedder="toy", audio_output="logits")


def test_an_embedder_plugin_cannot_reuse_a_built_in_name(monkeypatch):
    _plugins(monkeypatch, embedder_registry, "t2mbench.embedders", {"passt": "support.plugin_embedder:SPEC"})
    with pytest.raises(ConfigError) as info:
        embedders()
    assert str(info.value) == ("embedder plugin 'passt' (support.plugin_embedder:SPEC) repeats a built-in embedder "
                               "name; rename it")
