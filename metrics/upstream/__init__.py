"""Parity with the upstream packages: :mod:`t2mbench.metrics.upstream.parity` (product code, behind
``t2mbench metrics parity``) and the standalone runner scripts beside it (``*_runner.py``,
``openl3_*.py``), which the upstream packages' own python runs in a subprocess; the product
never imports the runners."""
