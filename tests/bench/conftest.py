import pytest

from bench.corpus import build_corpus


@pytest.fixture(scope="session")
def rendered_corpus(tmp_path_factory):
    """Six 2-s clips of seed 33 (a Bach chorale and folk tunes: quick to parse), both splits."""
    out = tmp_path_factory.mktemp("rendered_corpus") / "corpus"
    build_corpus(out, 6, 2.0, 33, progress=False)
    return out
