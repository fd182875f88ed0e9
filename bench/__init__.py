"""bench: the CLI and everything that wires models and metrics together (corpus, generation
runs, timing harness, sweeps, paper tables, gates)."""
