"""t2mbench: evaluation and benchmarking for diffusion text-to-music generation.

One installed name. The wheel maps the repository's top-level folders under it
(``pyproject.toml`` ``package-dir``), and the layers import one way only, leaf first:

``t2mbench.core`` <- ``t2mbench.reference_models`` <- ``t2mbench.metrics`` <- ``t2mbench.bench``
<- ``t2mbench.leaderboards`` <- ``t2mbench.cli`` (``tests/test_layering.py`` enforces it).
"""

__version__ = "0.2.0"
