"""Reference models in plain PyTorch: Oobleck VAE, DiT, conditioners, objectives, samplers,
guidance. Tensors in, tensors out; no file I/O but weights."""
