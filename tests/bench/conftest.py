import pytest
import torch
from safetensors.torch import save_file

from t2mbench.bench.corpus import build_corpus
from t2mbench.reference_models import build


@pytest.fixture(scope="session")
def rendered_corpus(tmp_path_factory):
    """Six 2-s clips of seed 33 (a Bach chorale and folk tunes: quick to parse), both splits."""
    out = tmp_path_factory.mktemp("rendered_corpus") / "corpus"
    build_corpus(out, 6, 2.0, 33, progress=False)
    return out


@pytest.fixture(scope="session")
def vae_file(tmp_path_factory):
    """The tiny model's VAE at a seeded random initialisation, saved as a training run's ``ema.safetensors``."""
    torch.manual_seed(7)
    vae = build("tiny").pretransform.model
    path = tmp_path_factory.mktemp("vae") / "ema.safetensors"
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(path))
    return path
