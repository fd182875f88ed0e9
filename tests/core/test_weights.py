import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest

from t2mbench.core import weights as W
from t2mbench.core.errors import ChecksumError, MissingWeightsError, WeightsError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("T2MBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def entry():
    wf = W.WeightFile(name="test-model", filename="model.bin", url="http://127.0.0.1:9/model.bin", sha256=SHA)
    W.register(wf)
    return wf


def test_missing_file_error_names_file_url_and_destination(home, entry):
    with pytest.raises(MissingWeightsError) as e:
        W.resolve("test-model")
    msg = str(e.value)
    assert msg.startswith("weights 'test-model' not found: expected model.bin at ")
    assert str(home / "weights" / "model.bin") in msg and "http://127.0.0.1:9/model.bin" in msg
    assert "t2mbench weights fetch test-model" in msg


def test_resolve_checks_sha256(home, entry):
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "model.bin").write_bytes(PAYLOAD)
    assert W.resolve("test-model") == home / "weights" / "model.bin"
    bad = home / "truncated.bin"
    bad.write_bytes(PAYLOAD[:1000])
    with pytest.raises(ChecksumError, match=r"truncated\.bin: sha256 [0-9a-f]{64} does not match the published"):
        W.resolve("test-model", bad)
    assert W.resolve("test-model", bad, verify=False) == bad


def test_unknown_name_lists_known(entry):
    with pytest.raises(WeightsError, match=r"unknown weights 'nope'; known: .*test-model"):
        W.get("nope")


def test_conflicting_registration_is_refused(entry):
    with pytest.raises(WeightsError, match="registered twice"):
        W.register(W.WeightFile(name="test-model", filename="other.bin", url=None, sha256=None))


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (enough for the resume test)."""

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_resumes_a_partial_download(home, server):
    wf = W.register(W.WeightFile(name="served", filename="model.bin", url=f"{server}/model.bin", sha256=SHA))
    part = home / "weights" / "model.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:300_000])
    path = W.fetch(wf.name, progress=False)
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_fetch_refuses_a_corrupt_download(home, server):
    W.register(W.WeightFile(name="served-bad", filename="model.bin", url=f"{server}/model.bin", sha256="0" * 64))
    with pytest.raises(ChecksumError):
        W.fetch("served-bad", progress=False)
    assert not (home / "weights" / "model.bin").exists()


def test_fetch_offline_says_where_to_put_the_file(home):
    W.register(W.WeightFile(name="offline", filename="o.bin", url="http://127.0.0.1:9/o.bin", sha256=SHA))
    with pytest.raises(MissingWeightsError, match=r"expected o\.bin at .*; download it from .* download failed"):
        W.fetch("offline", progress=False)
