"""Parity with the upstream packages: :mod:`t2mbench.metrics.upstream.parity` (behind
``t2mbench metrics parity``). The runner scripts it starts under the upstream packages' own python
are not product code and live outside the package, in the source repository's ``tools/upstream/``."""
