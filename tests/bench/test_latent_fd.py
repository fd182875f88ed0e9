"""``fd_latent`` from stored cell latents (no model): frame rows, the FD against the reference statistics,
its cache, the paired σ̂ − η = 0 row and the error for a cell generated before latents were kept."""

import numpy as np
import pytest

from t2mbench.bench.cells import Cell, cell_dir
from t2mbench.bench.reproduce import latent_fd
from t2mbench.core.errors import ConfigError
from t2mbench.metrics.frechet import embedding_stats, frechet_distance


def _cell(sampler, options, steps=10):
    return Cell("tiny", sampler, steps, 3.0, 1, 6, 2.0, options)


def _write(out, cell, latents):
    folder = cell_dir(out, cell)
    folder.mkdir(parents=True)
    np.save(folder / "latents.npy", latents.astype(np.float32))


def test_fd_latent_rows_and_paired_difference(tmp_path):
    rng = np.random.default_rng(0)
    ref_latents = rng.normal(size=(6, 4, 40))
    ref = embedding_stats(np.concatenate(latent_fd.frames(ref_latents)))
    eta0, sig = _cell("ddim", {"eta": 0.0}), _cell("ddpm", {"variance": "fixed_large"})
    clean = rng.normal(size=(6, 4, 40)) * 0.8
    _write(tmp_path, eta0, clean)
    _write(tmp_path, sig, clean + rng.normal(size=clean.shape) * 0.6)  # σ̂: the same samples plus white noise
    assert latent_fd.frames(clean)[2].shape == (40, 4)  # one row per latent frame
    table = latent_fd.latent_rows(tmp_path, [eta0, sig], ref, {eta0.key: eta0, sig.key: eta0})
    rows = {(r.sampler, r.metric): r for r in table.itertuples()}
    generated = np.concatenate(latent_fd.frames(clean.astype(np.float32)))
    expected = frechet_distance(generated, ref_latents.transpose(0, 2, 1).reshape(-1, 4))
    assert rows[("ddim", "fd_latent")].value == pytest.approx(expected, rel=1e-9)
    assert ("ddim", "fd_latent.minus_baseline") not in rows  # the baseline is not compared with itself
    paired = rows[("ddpm", "fd_latent.minus_baseline")]
    assert paired.value == pytest.approx(rows[("ddpm", "fd_latent")].value - rows[("ddim", "fd_latent")].value)
    assert paired.ci_low <= paired.value <= paired.ci_high
    assert rows[("ddpm", "fd_latent")].sampler_options == '{"variance":"fixed_large"}'
    assert (cell_dir(tmp_path, sig) / "fd_latent.json").is_file()
    # cached: a second call reads the file, even with the latents gone
    (cell_dir(tmp_path, sig) / "latents.npy").unlink()
    assert latent_fd.cell_fd(tmp_path, sig, ref)["value"] == rows[("ddpm", "fd_latent")].value


def test_a_cell_without_latents_is_a_config_error(tmp_path):
    ref = embedding_stats(np.random.default_rng(1).normal(size=(50, 4)))
    cell = _cell("ddim", {"eta": 0.0})
    cell_dir(tmp_path, cell).mkdir(parents=True)
    with pytest.raises(ConfigError, match="has no latents.npy; regenerate the cell"):
        latent_fd.cell_fd(tmp_path, cell, ref)
