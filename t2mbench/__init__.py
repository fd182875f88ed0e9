"""t2mbench core: the plumbing every package shares (audio I/O, weights, provenance, errors).

The layers import one way: ``t2mbench`` <- ``reference_models`` <- ``metrics`` <- ``bench``
<- ``leaderboards``.
"""

__version__ = "0.1.0"
