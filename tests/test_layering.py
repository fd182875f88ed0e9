"""Imports point one way, leaf first, and no module imports itself back through others.

Layers (``t2mbench/__init__.py``): core <- reference_models <- metrics <- bench <- leaderboards
<- cli. Every import counts, the lazy ones inside functions too. The tree walked is the
installed package (wheel or editable), found through the import system.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import t2mbench

LAYERS = ("core", "reference_models", "metrics", "bench", "leaderboards", "cli")


def layer_of(module: str) -> int:
    """The layer index of a ``t2mbench`` module: its first name below ``t2mbench``; the root
    package (version only) is the leaf, ``__main__`` is the CLI."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    head = "cli" if parts[1] == "__main__" else parts[1]
    return LAYERS.index(head)


def product_modules() -> dict[str, Path]:
    """Every module of the installed ``t2mbench`` with its source file."""
    found = {"t2mbench": Path(t2mbench.__file__)}
    # each layer's package is walked from its own __path__: an editable install maps the
    # repository's folders in through a finder that t2mbench.__path__ alone does not show
    roots = [importlib.import_module(f"t2mbench.{name}") for name in LAYERS[:-1]]
    infos = [i for root in roots for i in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}.")]
    infos += [i for i in pkgutil.iter_modules(t2mbench.__path__, prefix="t2mbench.") if not i.ispkg]
    found.update({root.__name__: Path(root.__file__) for root in roots})
    for info in infos:
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin, info.name
        found[info.name] = Path(spec.origin)
    return found


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The ``t2mbench`` modules that ``module`` imports anywhere in its body (``from P import
    name`` counts as ``P.name`` when that is a module, otherwise as ``P``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("t2mbench"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("t2mbench"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    out.discard(module)
    return {m for m in out if m in known}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = product_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def test_every_layer_is_installed(graph):
    assert {layer_of(m) for m in graph} == set(range(len(LAYERS)))


def test_no_import_points_up_the_stack(graph):
    upward = sorted(
        f"{m} ({LAYERS[layer_of(m)]}) imports {t} ({LAYERS[layer_of(t)]})"
        for m, targets in graph.items() for t in targets if layer_of(t) > layer_of(m)
    )  # fmt: skip
    assert upward == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles(graph):
    assert strongly_connected(graph) == []


def test_the_checker_sees_an_upward_import_and_a_cycle():
    """The two checks on a made-up graph: one arrow up, one two-module cycle."""
    fake = {"t2mbench.metrics.x": {"t2mbench.bench.y"}, "t2mbench.bench.y": {"t2mbench.metrics.x"}}
    assert layer_of("t2mbench.metrics.x") < layer_of("t2mbench.bench.y")
    assert strongly_connected(fake) == [["t2mbench.bench.y", "t2mbench.metrics.x"]]
    assert layer_of("t2mbench.__main__") == LAYERS.index("cli") and layer_of("t2mbench") == 0


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def training_imports(graph: dict[str, set[str]], package: str) -> list[str]:
    """``module -> training module`` for every module of ``package`` that reaches
    ``t2mbench.bench.train`` through its imports."""
    train = "t2mbench.bench.train"
    return sorted(
        f"{m} -> {t}" for m in graph if m == package or m.startswith(package + ".")
        for t in reachable(graph, m) if t == train or t.startswith(train + ".")
    )  # fmt: skip


def test_the_evidence_studies_never_import_the_training_code(graph):
    """The studies read a corpus's splits (bench.corpus.splits) and DSP (metrics), not training internals."""
    assert any(m.startswith("t2mbench.bench.evidence.") for m in graph)
    assert training_imports(graph, "t2mbench.bench.evidence") == []


def test_the_training_check_sees_a_direct_and_an_indirect_import():
    fake = {"t2mbench.bench.evidence.a": {"t2mbench.bench.train.data"}, "t2mbench.bench.evidence.b": {"t2mbench.x"},
            "t2mbench.x": {"t2mbench.bench.train"}, "t2mbench.bench.train.data": set(), "t2mbench.bench.train": set()}
    assert training_imports(fake, "t2mbench.bench.evidence") == [
        "t2mbench.bench.evidence.a -> t2mbench.bench.train.data", "t2mbench.bench.evidence.b -> t2mbench.bench.train"]


def test_no_product_folder_imports_an_upstream_stack():
    """The upstream stacks (they break transformers beside the CPU torch) are imported only by the
    scripts in tools/upstream/, which run under the upstream packages' own python."""
    import re

    banned = re.compile(r"^\s*(import|from)\s+(torchaudio|torchvision|timm|tensorflow|torchlibrosa)\b", re.M)
    root = Path(__file__).resolve().parents[1]
    folders = ("bench", "reference_models", "metrics", "leaderboards", "t2mbench")
    files = [p for folder in folders for p in sorted((root / folder).rglob("*.py"))]
    found = [str(p.relative_to(root)) for p in files if banned.search(p.read_text(encoding="utf-8"))]
    assert found == []
