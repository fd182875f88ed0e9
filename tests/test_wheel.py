"""The built wheel installs one top-level name, ``t2mbench``, holds every product file, and
leaves other distributions' ``metrics``, ``bench`` and ``leaderboards`` packages alone.

A real build (``pip wheel`` of this checkout, with build isolation as a user gets it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"t2mbench": "t2mbench", "bench": "t2mbench/bench", "metrics": "t2mbench/metrics",
           "reference_models": "t2mbench/reference_models", "leaderboards": "t2mbench/leaderboards"}  # fmt: skip
SHIPPED = (".py", ".json", ".safetensors", ".csv", ".md", ".html", ".tex")


def pip(*args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (a build writes build/ and egg-info where it runs)."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".tox", "build", "dist", "runs", "tests", "docs", "tools", "benchmarks", "*.egg-info", "__pycache__"))
    pip("wheel", "--no-deps", "-q", "-w", str(out), str(src))
    (found,) = out.glob("t2mbench-*.whl")
    return found


def test_the_only_top_level_import_name_is_t2mbench(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert z.read(top_level).decode().split() == ["t2mbench"]
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"t2mbench"}
    assert "t2mbench = t2mbench.cli:main" in entry_points


def test_the_wheel_holds_every_product_file_under_its_mapped_name(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    expected = {
        f"{target}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, target in FOLDERS.items()
        for path in (ROOT / folder).rglob("*")
        if path.suffix in SHIPPED and "__pycache__" not in path.parts and not path.name.startswith(".")
    }
    assert expected - names == set()
    assert "t2mbench/reference_models/weights/tiny/model.safetensors" in names
    assert "t2mbench/metrics/embedders/checkpoints/evaluator.safetensors" in names
    assert not [n for n in names if n.startswith(("t2mbench/tests", "t2mbench/tools", "t2mbench/benchmarks"))]


def fake_distribution(root: Path, name: str) -> Path:
    """A one-module distribution that owns the top-level package ``name`` (PyPI has ``metrics``,
    ``bench`` and ``leaderboards``); its module says where it comes from."""
    src = root / f"dist-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(f"ORIGIN = 'the other {name} distribution'\n")
    (src / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "9.9"\n[tool.setuptools]\npackages = ["{name}"]\n'
    )
    return src


def test_installing_the_wheel_beside_other_metrics_bench_leaderboards_packages_clobbers_none(wheel, tmp_path):
    target = tmp_path / "site"
    others = ("metrics", "bench", "leaderboards")
    pip("install", "--no-deps", "-q", "--target", str(target), *(str(fake_distribution(tmp_path, n)) for n in others))
    pip("install", "--no-deps", "-q", "--target", str(target), "--upgrade", str(wheel))
    code = (
        "import bench, leaderboards, metrics, t2mbench.metrics as ours, t2mbench.bench.cells; "
        "print(metrics.ORIGIN, bench.ORIGIN, leaderboards.ORIGIN, ours.__file__, sep='|')"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    *origins, ours = proc.stdout.strip().split("|")
    assert origins == [f"the other {n} distribution" for n in others]
    assert Path(ours) == target / "t2mbench" / "metrics" / "__init__.py"
