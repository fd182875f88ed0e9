"""Training: a resumable deterministic loop and one task per trained model (tiny VAE, tiny
DiT, the evaluator)."""
