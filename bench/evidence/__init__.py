"""The studies behind ``docs/evidence/``: does the offline closed loop measure something?

Each module is one study, run as ``t2mbench evidence STUDY`` (:mod:`t2mbench.bench.commands.evidence`):
the evaluator's retrieval and attribute accuracy against chance (:mod:`.retrieval`), Fréchet
distance under degradation (:mod:`.degradation`), the tiny VAE's reconstruction table
(:mod:`.autoencoder`), the CFG scale chosen on train clips (:mod:`.guidance_sweep`), the Stable
Audio table layout on the test split (:mod:`.closed_loop`), whether an AP-Adapter's generations follow
their audio prompt (:mod:`.ap_adapter`) and the report collecting them (:mod:`.report`). The studies read
the corpus's splits (:mod:`t2mbench.bench.corpus.splits`), never the training code's internals."""
