"""Real-browser tests: Debian's chromium, headless, driven over the DevTools protocol.

Screenshots go to ``build/screenshots/`` at the repository root (``board.png``, ``system.png``,
``listening.png``). The test installs chromium with apt-get when it is absent (as root) and
skips, with the reason, only where that is impossible.
"""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from support import submissions as subs
from support.cdp import Browser, chromium
from support.listening_runs import runs

from t2mbench.core.files import read_json
from t2mbench.leaderboards import listening, store

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
EVIL = "<script>window.pwned=1</script> \"quoted\" 'x' Zoë ♫"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, reason = chromium()
    if binary is None:
        pytest.skip(f"Chromium cannot be installed here: {reason}")
    downloads = tmp_path_factory.mktemp("downloads")
    b = Browser(binary, downloads)
    b.downloads = downloads
    yield b
    b.close()


def column(page, col):
    return page.evaluate(
        f"Array.prototype.filter.call(document.querySelectorAll('#board tbody tr'), r => r.style.display !== 'none')"
        f".map(r => r.cells[{col}].getAttribute('data-v'))"
    )


def test_the_board_sorts_filters_escapes_and_renders_in_chromium(browser, tmp_path):
    board = tmp_path / "board"
    specs = [("ddim-10", 0.30, 1.0), (EVIL, 0.45, 3.0), ("ddpm-50", 0.25, 9.0), ("euler-10", 0.40, 1.5)]
    rng = np.random.default_rng(0)
    for n, (name, clap, seconds) in enumerate(specs):
        sub = subs.write(tmp_path / f"s{n}", name, rng.normal(clap, 0.02, 20), rng.normal(1.0, 0.1, 20),
                         (100.0 + 10 * n, 95.0 + 10 * n, 105.0 + 10 * n), seconds=seconds)  # fmt: skip
        if n == 0:
            store.init(board, sub, title="Board <i>test</i> ✓", quality_metric="clap_evaluator")
        store.add(board, sub)
    store.build(board)
    page = browser.open((board / "rendered" / "site" / "index.html").as_uri())
    assert page.evaluate("document.title") == "Board <i>test</i> ✓"
    assert page.evaluate("window.pwned === undefined && document.scripts.length === 1")
    assert page.evaluate("document.querySelectorAll('#board tbody tr').length") == 4
    col = page.evaluate("Array.prototype.findIndex.call(document.querySelectorAll('#board th'),"
                        " th => th.getAttribute('data-col') === 'clap_evaluator')")  # fmt: skip
    page.evaluate(f"document.querySelectorAll('#board th')[{col}].click()")
    values = [float(v) for v in column(page, col)]
    assert values == sorted(values) and len(values) == 4
    page.evaluate(f"document.querySelectorAll('#board th')[{col}].click()")
    names = page.evaluate("Array.prototype.map.call(document.querySelectorAll('#board tbody tr'),"
                          " r => r.getAttribute('data-name'))")  # fmt: skip
    assert names == [s[0] for s in sorted(specs, key=lambda s: -s[1])]  # CLAP descending: the true order
    # filter by a fragment of the hostile name: it is matched as text
    page.evaluate("var f=document.getElementById('filter'); f.value='<script>window';"
                  " f.dispatchEvent(new Event('input'))")  # fmt: skip
    visible = page.evaluate("Array.prototype.filter.call(document.querySelectorAll('#board tbody tr'),"
                            " r => r.style.display !== 'none').map(r => r.cells[1].textContent)")  # fmt: skip
    assert visible == [EVIL]
    page.evaluate("var f=document.getElementById('filter'); f.value=''; f.dispatchEvent(new Event('input'))")
    # the Pareto plot: fastest (ddim-10) and best (EVIL, CLAP 0.45) are on the front; ddpm-50 is dominated
    front = page.evaluate("Array.prototype.filter.call(document.querySelectorAll('#pareto circle'),"
                          " c => c.getAttribute('data-pareto') === 'true').map(c => c.textContent.split(':')[0])")
    assert sorted(front) == sorted(["ddim-10", EVIL, "euler-10"])
    shot = page.screenshot(SCREENSHOTS / "board.png")
    assert shot.stat().st_size > 10_000
    # one page per system with its provenance, the hostile name as text
    link = page.evaluate("Array.prototype.find.call(document.querySelectorAll('#board a'),"
                         " a => a.textContent.indexOf('Zoë') >= 0).href")  # fmt: skip
    system = browser.open(link)
    assert system.evaluate("document.querySelector('h1').textContent") == EVIL
    manifest = json.loads(system.evaluate("document.getElementById('manifest').textContent"))
    assert manifest["system"]["name"] == EVIL and manifest["protocol"] == subs.PROTOCOL
    assert system.evaluate("window.pwned === undefined && document.scripts.length === 0")
    system.screenshot(SCREENSHOTS / "system.png")


def test_the_listening_page_plays_answers_and_exports_in_chromium(browser, tmp_path):
    names = ["sys A", "sys B"]
    listening.make(runs(tmp_path, names, clips=3, seconds=1.0), tmp_path / "t", names=names, clips=2, seconds=None)
    key = read_json(tmp_path / "t" / "key.json")
    page = browser.open((tmp_path / "t" / "page" / "index.html").as_uri())
    first = page.evaluate("document.querySelector('.item').id")
    assert page.evaluate("document.querySelector('audio').play().then(() => true)") is True
    page.wait("document.querySelector('audio').currentTime > 0")
    page.evaluate("document.getElementById('export').click()")
    status = page.evaluate("document.getElementById('status').textContent")
    assert status == f"{len(key['items'])} items are not answered yet"
    chosen = {}
    for item, k in key["items"].items():
        if k["type"] == "ab":
            choice = k["expected"] if k.get("attention") else ("tie" if len(chosen) % 3 == 0 else "a")
            chosen[item] = choice
            page.evaluate(f"document.querySelector('input[name=\"{item}\"][value=\"{choice}\"]').click()")
        else:
            rating = 1 if k.get("attention") else 4
            chosen[item] = {q: rating for q in key["questions"]}
            for q in key["questions"]:
                page.evaluate(f"document.querySelector('input[name=\"{item}-{q}\"][value=\"{rating}\"]').click()")
    assert page.evaluate("document.querySelectorAll('.item.done').length") == len(key["items"])
    page.screenshot(SCREENSHOTS / "listening.png")
    page.evaluate("document.getElementById('listener').value = 'Zoë <b>';"
                  " document.getElementById('export').click()")  # fmt: skip
    target = browser.downloads / "answers-Zo___b_.json"
    end = time.monotonic() + 20
    while time.monotonic() < end and not target.is_file():
        time.sleep(0.1)
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["page_id"] == key["page_id"] and doc["listener"] == "Zoë <b>"
    got = {a["item"]: a.get("choice", a.get("ratings")) for a in doc["answers"]}
    assert got == chosen
    assert doc["played"] == [f"{first}:{'a' if key['items'][first]['type'] == 'ab' else 'x'}"]
    shown = page.evaluate("Array.prototype.map.call(document.querySelectorAll('.item'), d => d.id)")
    assert doc["order"] == shown and sorted(shown) == sorted(key["items"]) and shown[0] == first
    result = listening.analyze([target], tmp_path / "t" / "key.json", min_votes=1, resamples=50)
    assert result["listeners"] == ["Zoë <b>"] and result["excluded"] == []


def test_the_committed_tiny_board_opens_sorts_and_shows_published_tables_in_chromium(browser):
    import t2mbench.leaderboards

    site = Path(t2mbench.leaderboards.__file__).parent / "boards" / "tiny-sampler-steps" / "rendered" / "site"
    data = read_json(site.parent / "ranking.json")
    page = browser.open((site / "index.html").as_uri())
    assert page.evaluate("document.querySelectorAll('#board tbody tr').length") == len(data["systems"]) == 6
    col = page.evaluate("Array.prototype.findIndex.call(document.querySelectorAll('#board th'),"
                        " th => th.getAttribute('data-col') === 'fd_evaluator')")  # fmt: skip
    page.evaluate(f"document.querySelectorAll('#board th')[{col}].click()")
    names = page.evaluate("Array.prototype.map.call(document.querySelectorAll('#board tbody tr'),"
                          " r => r.getAttribute('data-name'))")  # fmt: skip
    by_fd = sorted(data["systems"], key=lambda s: s["metrics"]["fd_evaluator"]["value"])
    assert names == [s["name"] for s in by_fd]
    tags = page.evaluate("document.querySelectorAll('span.tag').length")
    assert tags == len(read_json(site.parents[1] / "published.json")["tables"])
    page.screenshot(SCREENSHOTS / "tiny-sampler-steps.png")
