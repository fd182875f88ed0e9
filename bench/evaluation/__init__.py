"""Evidence about the shipped evaluator: retrieval and attribute accuracy against chance
(:mod:`bench.evaluation.retrieval`) and Fréchet distance under degradation
(:mod:`bench.evaluation.degradation`)."""
