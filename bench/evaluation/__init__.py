"""Evidence about the shipped evaluator: retrieval and attribute accuracy against chance
(:mod:`t2mbench.bench.evaluation.retrieval`) and Fréchet distance under degradation
(:mod:`t2mbench.bench.evaluation.degradation`)."""
