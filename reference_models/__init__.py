"""Reference models in plain PyTorch: Oobleck VAE, DiT, conditioners, objectives, samplers,
guidance. Tensors in, tensors out; no file I/O but weights.

    import t2mbench.reference_models as rm
    model = rm.load_model("sao-1.0")                  # build on meta, load the registered weights
    out = rm.generate(model, ["warm piano"], sampler="dpmpp_3m_sde", steps=100, cfg_scale=7.0,
                      seconds=10.0, seed=0, batch_size=1)
    out.audio  # float32 [1, 2, 441000] at out.sample_rate

Shipped configs: ``sao-1.0``, ``sao-small``, ``tiny`` (see ``reference_models/README.md``).
"""

from t2mbench.reference_models.checkpoints import from_diffusers, load_checkpoint, read_state_dict, to_diffusers
from t2mbench.reference_models.factory import build, config_names, load_config
from t2mbench.reference_models.generate import GenerationResult, generate, latent_length, load_model
from t2mbench.reference_models.model import LatentDiffusionModel, ModelInfo

__all__ = [
    "GenerationResult", "LatentDiffusionModel", "ModelInfo", "build", "config_names", "from_diffusers", "generate",
    "latent_length", "load_checkpoint", "load_config", "load_model", "read_state_dict", "to_diffusers",
]  # fmt: skip
