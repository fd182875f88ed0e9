"""t2mbench: evaluation and benchmarking for diffusion text-to-music generation.

One installed name. The wheel maps the repository's top-level folders under it
(``setup.py``'s package-dir mapping), and the layers import one way only, leaf first:

``t2mbench.core`` <- ``t2mbench.reference_models`` <- ``t2mbench.metrics`` <- ``t2mbench.bench``
<- ``t2mbench.leaderboards`` <- ``t2mbench.cli`` (``tests/test_layering.py`` enforces it).
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.2.0"

FOLDERS = ("bench", "metrics", "reference_models", "leaderboards")


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """In a source checkout on ``sys.path`` (``python -m t2mbench`` run from the repository root
    finds this folder before any installed copy), map ``t2mbench.X`` to the folder ``X/`` beside
    it, as the wheel and an editable install do; deeper modules follow from ``X``'s own path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - the import protocol's signature
        head, _, rest = name.partition(".")
        if head != "t2mbench" or rest not in FOLDERS:
            return None
        init = self.root / rest / "__init__.py"
        return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])


_root = Path(__file__).resolve().parent.parent
if (_root / "setup.py").is_file() and (_root / "bench" / "__init__.py").is_file():
    sys.meta_path.append(_CheckoutFinder(_root))
