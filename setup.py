"""The one-name layout: every top-level product folder is installed under ``t2mbench``.

The repository keeps its design's folders (``bench/``, ``metrics/``, ``reference_models/``,
``leaderboards/``) beside ``t2mbench/`` (the root package: version, CLI, ``core``); the wheel
maps folder ``X`` to ``t2mbench.X``, so the only top-level import name it installs is
``t2mbench`` (``tests/test_wheel.py`` builds it and checks). Everything else is in
``pyproject.toml``; this file only computes the mapping, so a new subpackage or data folder
needs no list to be kept up to date.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = ("bench", "metrics", "reference_models", "leaderboards")
SKIP = ["*__pycache__*", "*.egg-info*"]

package_dir = {"t2mbench": "t2mbench"}
packages = find_namespace_packages(include=["t2mbench", "t2mbench.*"], exclude=SKIP)
for folder in FOLDERS:
    package_dir[f"t2mbench.{folder}"] = folder
    packages += [f"t2mbench.{p}" for p in find_namespace_packages(include=[folder, f"{folder}.*"], exclude=SKIP)]

setup(packages=packages, package_dir=package_dir)
