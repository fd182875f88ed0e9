"""Listening tests: a blinded static page (pairwise A/B and MOS), and the analysis of its answers.

``make`` writes ``out/page/`` (``index.html`` plus ``audio/``; open it from disk, no server) and
``out/key.json`` (which system is behind each blinded item; keep it away from listeners):

- every clip is downmixed to mono, loudness-normalised to -23 LUFS (BS.1770,
  :func:`t2mbench.core.audio.loudness_normalize`) and saved as 16-bit WAV at its own sample rate
  under a random name, so neither the file name, the level nor the channel count gives a system
  away (a test of stereo imaging would need all systems in stereo);
- A/B items: for each prompt, each pair of systems once, sides drawn at random; MOS items: each
  prompt × system, rated 1–5 on :data:`QUESTIONS`; the page shows the items in a fresh random
  order for every listener and records that order in the answers;
- attention checks: an A/B pair of a clip against an obviously degraded copy of itself (white
  noise at 0 dB SNR, hard-clipped), whose answer must be the clean side; and a MOS item on a
  degraded clip, whose audio-quality rating must be at most 2;
- the listener answers every item and downloads ``answers-<listener>.json``.

``analyze`` reads answer files with the key and computes, over the listeners who passed every
attention check (the others are excluded and reported):

- MOS per system and question: the mean rating with a percentile bootstrap CI that resamples
  listeners (a cluster bootstrap: one listener's ratings are correlated, so resampling single
  ratings would give intervals that are too narrow);
- Bradley–Terry strengths from the A/B votes (ties count as half a win for each side; Music
  Arena's and Chatbot Arena's practice) by maximum likelihood, on the Elo scale
  (400 · log10 odds, mean-centred at 1000), with percentile CIs from resampling votes;
  systems with fewer than ``min_votes`` votes are reported but not scored; shared ranks where
  CIs overlap.

Its output holds board columns (``columns``) that ``t2mbench leaderboard build`` shows beside the
automatic metrics.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2mbench.core.audio import AudioError, load_audio, loudness_normalize, peak_normalize, save_audio
from t2mbench.core.errors import ConfigError
from t2mbench.core.files import read_json, staged_outputs, write_json
from t2mbench.core.manifest import load_clipset
from t2mbench.leaderboards.ranking import shared_ranks
from t2mbench.leaderboards.schema_check import require
from t2mbench.metrics.bootstrap import percentile_interval

QUESTIONS = {
    "quality": "Audio quality: how clean and artefact-free is the sound?",
    "alignment": "Text alignment: how well does the music match the description?",
    "musicality": "Musicality: how musical and coherent is it?",
}
LABELS = {"quality": "audio quality", "alignment": "text alignment", "musicality": "musicality"}
ELO_SCALE = 400.0 / np.log(10.0)
MIN_VOTES = 30
TARGET_LUFS = -23.0


def _system_name(run: Path) -> str:
    cell = run / "cell.json"
    if cell.is_file():
        c = read_json(cell)["cell"]
        return f"{c['model']} {c['sampler']}-{c['steps']}"
    return run.name


def _prepare(src: Path, dst: Path, seconds: float | None, degrade_seed: int | None = None) -> None:
    audio, sr = load_audio(src, channels="mono")
    if seconds:
        audio = audio[:, : int(seconds * sr)]
    if degrade_seed is not None:
        rng = np.random.default_rng(degrade_seed)
        rms = float(np.sqrt(np.mean(audio**2))) or 0.1
        limit = 0.3 * float(np.abs(audio).max() or 1.0)
        audio = np.clip(audio + rng.normal(0.0, rms, audio.shape), -limit, limit)
    try:
        audio = loudness_normalize(audio, sr, TARGET_LUFS)
    except AudioError:
        audio = peak_normalize(audio)
    save_audio(dst, audio, sr)


def make(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *, names: Sequence[str] | None = None,
         clips: int = 4, seconds: float | None = 10.0, seed: int = 0, title: str = "Listening test") -> Path:
    """Write the page folder ``out/page`` and the key ``out/key.json``; returns the page's index."""
    if len(runs) < 2:
        raise ConfigError("a listening test needs at least two runs")
    runs = [Path(r) for r in runs]
    names = list(names) if names else [_system_name(r) for r in runs]
    if len(names) != len(runs) or len(set(names)) != len(names):
        raise ConfigError(f"one distinct name per run is needed, got {names}")
    sets = [load_clipset(r) for r in runs]
    common = [i for i in sets[0].ids if all(i in s.by_id() for s in sets[1:])]
    if not common:
        raise ConfigError("the runs share no clip id (they must be generated from the same prompts)")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(common, size=min(clips, len(common)), replace=False).tolist())
    with staged_outputs(out) as stage:  # the page and its key replace an earlier pair together, or not at all
        _write_page(stage, sets, names, chosen, rng, seconds, seed, title)
    return Path(out) / "page" / "index.html"


def _write_page(stage: Path, sets: list, names: list[str], chosen: list[str], rng: np.random.Generator,
                seconds: float | None, seed: int, title: str) -> None:  # fmt: skip
    """Write ``page/`` (audio, index.html) and ``key.json`` into the staging folder ``stage``."""
    page = stage / "page"
    (page / "audio").mkdir(parents=True)
    page_id = hashlib.sha256(json.dumps([names, chosen, seed]).encode()).hexdigest()[:12]
    tokens = iter(f"{x:08x}" for x in rng.permutation(1 << 20)[:10_000] * 2654435761 % (1 << 32))

    def audio(src: Path, degrade: int | None = None) -> str:
        name = f"{next(tokens)}.wav"
        _prepare(src, page / "audio" / name, seconds, degrade)
        return name

    items, key = [], {}
    files = {(s, c): audio(sets[k].by_id()[c].path) for k, s in enumerate(names) for c in chosen}
    captions = {c: sets[0].by_id()[c].caption or "" for c in chosen}
    for c in chosen:
        for a, b in itertools.combinations(names, 2):
            a, b = (a, b) if rng.random() < 0.5 else (b, a)
            items.append(({"type": "ab", "caption": captions[c], "a": files[(a, c)], "b": files[(b, c)]},
                          {"type": "ab", "clip_id": c, "a": a, "b": b}))  # fmt: skip
        for s in names:
            items.append(({"type": "mos", "caption": captions[c], "audio": files[(s, c)]},
                          {"type": "mos", "clip_id": c, "system": s}))  # fmt: skip
    c0, s0 = chosen[0], names[0]
    bad = audio(sets[0].by_id()[c0].path, degrade=seed + 1)
    clean_left = bool(rng.random() < 0.5)
    items.append(({"type": "ab", "caption": captions[c0], "a": files[(s0, c0)] if clean_left else bad,
                   "b": bad if clean_left else files[(s0, c0)]},
                  {"type": "ab", "clip_id": c0, "attention": True,
                   "expected": "a" if clean_left else "b"}))  # fmt: skip
    items.append(({"type": "mos", "caption": captions[c0], "audio": bad},
                  {"type": "mos", "clip_id": c0, "attention": True, "max_quality": 2}))  # fmt: skip
    order = rng.permutation(len(items))
    public = []
    for n, i in enumerate(order):
        item_id = f"i{n:03d}"
        public.append({"id": item_id, **items[i][0]})
        key[item_id] = items[i][1]
    write_json(stage / "key.json", {"page_id": page_id, "systems": names, "questions": list(QUESTIONS), "items": key})
    (page / "index.html").write_text(_html(title, page_id, public), encoding="utf-8")


def _html(title: str, page_id: str, items: list[dict[str, Any]]) -> str:
    from html import escape

    data = json.dumps({"page_id": page_id, "questions": QUESTIONS, "items": items}, ensure_ascii=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{_INTRO}"
            f'<script type="application/json" id="data">{data}</script><div id="items"></div>'
            f'<p><button id="export">Download answers</button> <span id="status"></span></p>'
            f"<script>{_JS}</script></body></html>\n")  # fmt: skip


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:52em}.item{border:1px solid #ccc;padding:.8em;
margin:.8em 0;border-radius:6px}.item.done{border-color:#3a3}.caption{font-style:italic}label{margin-right:1em}"""
_INTRO = """<p>Your name or an alias: <input id="listener" value=""></p><p>Listen to every clip (headphones,
a quiet room). In an A/B item choose the clip you prefer overall; in a rating item rate each question
from 1 (bad) to 5 (excellent). When every item is answered, download your answers and send the file back.</p>"""
_JS = """(function(){
var data=JSON.parse(document.getElementById('data').textContent),box=document.getElementById('items');
var answers={},played={};
for(var s=data.items.length-1;s>0;s--){var r=Math.floor(Math.random()*(s+1)),t=data.items[s];
 data.items[s]=data.items[r];data.items[r]=t;}
function el(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs)e.setAttribute(k,attrs[k]);
 if(text!==undefined)e.textContent=text;return e;}
function player(item,side,src){var a=el('audio',{controls:'',preload:'none',src:'audio/'+src,'data-side':side});
 a.addEventListener('play',function(){played[item.id+':'+side]=true;});return a;}
function mark(item){var d=document.getElementById(item.id),a=answers[item.id],ok=false;
 if(item.type==='ab')ok=!!a;else ok=!!a&&Object.keys(data.questions).every(function(q){return a[q];});
 d.className=ok?'item done':'item';document.getElementById('status').textContent='';}
data.items.forEach(function(item,n){
 var d=el('div',{'class':'item',id:item.id});d.appendChild(el('h3',{},'Item '+(n+1)+' of '+data.items.length));
 d.appendChild(el('p',{'class':'caption'},'Description: '+item.caption));
 if(item.type==='ab'){
  ['a','b'].forEach(function(s){var p=el('p',{},s.toUpperCase()+': ');p.appendChild(player(item,s,item[s]));
   d.appendChild(p);});
  [['a','A is better'],['b','B is better'],['tie','About the same']].forEach(function(c){
   var l=el('label',{}),r=el('input',{type:'radio',name:item.id,value:c[0]});
   r.addEventListener('change',function(){answers[item.id]=c[0];mark(item);});
   l.appendChild(r);l.appendChild(document.createTextNode(' '+c[1]));d.appendChild(l);});
 }else{
  d.appendChild(player(item,'x',item.audio));
  Object.keys(data.questions).forEach(function(q){var p=el('p',{},data.questions[q]+' ');
   for(var v=1;v<=5;v++){(function(v){var l=el('label',{}),r=el('input',{type:'radio',name:item.id+'-'+q,value:v});
    r.addEventListener('change',function(){answers[item.id]=answers[item.id]||{};answers[item.id][q]=v;mark(item);});
    l.appendChild(r);l.appendChild(document.createTextNode(' '+v));p.appendChild(l);})(v);}
   d.appendChild(p);});
 }
 box.appendChild(d);});
document.getElementById('export').addEventListener('click',function(){
 var missing=data.items.filter(function(i){return document.getElementById(i.id).className!=='item done';});
 var status=document.getElementById('status');
 if(missing.length){status.textContent=missing.length+' items are not answered yet';return;}
 var name=document.getElementById('listener').value||'anonymous';
 var out={page_id:data.page_id,listener:name,answers:data.items.map(function(i){
  return i.type==='ab'?{item:i.id,choice:answers[i.id]}:{item:i.id,ratings:answers[i.id]};}),
  played:Object.keys(played).sort(),order:data.items.map(function(i){return i.id;})};
 var blob=new Blob([JSON.stringify(out,null,1)],{type:'application/json'});
 var a=el('a',{href:URL.createObjectURL(blob),download:'answers-'+name.replace(/[^A-Za-z0-9_-]/g,'_')+'.json'});
 document.body.appendChild(a);a.click();a.remove();status.textContent='answers downloaded';
});
})();"""


# --------------------------------------------------------------------------------------------- analysis


# what listen make writes and the page downloads; checked before any answer is counted
KEY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["page_id", "systems", "items"],
    "properties": {
        "page_id": {"type": "string"},
        "systems": {"type": "array", "items": {"type": "string"}},
        "questions": {"type": "array", "items": {"type": "string"}},
        "items": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["type"],
            "properties": {"type": {"enum": ["ab", "mos"]}, "clip_id": {"type": "string"}, "a": {"type": "string"},
                           "b": {"type": "string"}, "system": {"type": "string"}, "attention": {"type": "boolean"},
                           "expected": {"enum": ["a", "b"]}, "max_quality": {"type": "number"}},
        }},
    },
}  # fmt: skip
ANSWERS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["page_id", "answers"],
    "properties": {
        "page_id": {"type": "string"},
        "listener": {"type": ["string", "null"]},
        "answers": {"type": "array", "items": {
            "type": "object", "required": ["item"],
            "properties": {"item": {"type": "string"}, "choice": {"type": ["string", "null"]},
                           "ratings": {"type": ["object", "null"], "additionalProperties": {"type": "number"}}},
        }},
    },
}  # fmt: skip


def attention_failures(answers: Mapping[str, Any], key: Mapping[str, Any]) -> list[str]:
    """The attention items a listener got wrong (or skipped), as readable reasons."""
    given = {a["item"]: a for a in answers["answers"]}
    failed = []
    for item_id, k in key["items"].items():
        if not k.get("attention"):
            continue
        a = given.get(item_id)
        if k["type"] == "ab" and (a is None or a.get("choice") != k["expected"]):
            failed.append(f"{item_id}: preferred the degraded clip or no answer ({a and a.get('choice')})")
        if k["type"] == "mos" and (a is None or (a.get("ratings") or {}).get("quality", 99) > k["max_quality"]):
            failed.append(f"{item_id}: rated the degraded clip's quality above {k['max_quality']}")
    return failed


def bradley_terry(votes: np.ndarray, n_systems: int, *, ridge: float = 1e-6, iterations: int = 100) -> np.ndarray:
    """Log-strengths θ (mean 0) maximising Σ y log σ(θ_i − θ_j) + (1 − y) log σ(θ_j − θ_i) over
    ``votes`` [V, 3] = (i, j, y) with y = 1 (i won), 0 (j won), 0.5 (tie), by Newton's method
    with a tiny ridge (keeps a system that never lost finite)."""
    i, j, y = votes[:, 0].astype(int), votes[:, 1].astype(int), votes[:, 2]
    theta = np.zeros(n_systems)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(theta[i] - theta[j])))
        g = np.bincount(i, y - p, n_systems) - np.bincount(j, y - p, n_systems) - ridge * theta
        w = p * (1 - p)
        h = np.zeros((n_systems, n_systems))
        np.add.at(h, (i, i), w)
        np.add.at(h, (j, j), w)
        np.add.at(h, (i, j), -w)
        np.add.at(h, (j, i), -w)
        step = np.linalg.solve(h + ridge * np.eye(n_systems), g)
        theta += step
        if np.abs(step).max() < 1e-10:
            break
    return theta - theta.mean()


def elo(votes: np.ndarray, n_systems: int) -> np.ndarray:
    """Bradley–Terry strengths on the Elo scale (400 per factor 10 in odds), mean 1000."""
    return 1000.0 + ELO_SCALE * bradley_terry(votes, n_systems)


def listener_ci(ratings: Sequence[tuple[int, float]], n_listeners: int, *, resamples: int, seed: int,
                confidence: float) -> tuple[float, float]:
    """Percentile CI of the mean rating when whole listeners are resampled with replacement;
    ``ratings`` are ``(listener index, value)``."""
    who = np.array([w for w, _ in ratings])
    sums = np.bincount(who, [v for _, v in ratings], n_listeners)
    counts = np.bincount(who, minlength=n_listeners).astype(float)
    draws = np.random.default_rng(seed).multinomial(n_listeners, np.full(n_listeners, 1 / n_listeners), resamples)
    total = draws @ counts
    reps = (draws @ sums)[total > 0] / total[total > 0]
    return percentile_interval(reps, confidence)


def analyze(answer_files: Sequence[str | os.PathLike], key_file: str | os.PathLike, *, min_votes: int = MIN_VOTES,
            resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """MOS and Bradley–Terry results from answer files (see the module docstring)."""
    key = read_json(key_file)
    require(key, KEY_SCHEMA, str(key_file))
    systems = key["systems"]
    unknown = sorted({k[s] for k in key["items"].values() for s in ("a", "b", "system") if s in k} - set(systems))
    if unknown:
        raise ConfigError(f"{key_file}: $.items name systems not in $.systems: {', '.join(unknown)}")
    listeners, excluded = [], []
    votes: list[tuple[int, int, float]] = []
    ratings: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for f in answer_files:
        doc = read_json(f)
        require(doc, ANSWERS_SCHEMA, str(f))
        if doc.get("page_id") != key["page_id"]:
            raise ConfigError(f"{f}: answers for page {doc.get('page_id')!r}, the key is for {key['page_id']!r}")
        if doc.get("listener") in listeners:
            excluded.append({"listener": doc.get("listener"), "file": Path(f).name,
                             "reasons": ["a second answer file from this listener (the first one counts)"]})
            continue
        failed = attention_failures(doc, key)
        if failed:
            excluded.append({"listener": doc.get("listener"), "file": Path(f).name, "reasons": failed})
            continue
        who = len(listeners)
        listeners.append(doc.get("listener"))
        for a in doc["answers"]:
            k = key["items"].get(a["item"])
            if k is None or k.get("attention"):
                continue
            if k["type"] == "ab" and a.get("choice") in ("a", "b", "tie"):
                y = {"a": 1.0, "b": 0.0, "tie": 0.5}[a["choice"]]
                votes.append((systems.index(k["a"]), systems.index(k["b"]), y))
            elif k["type"] == "mos":
                for q, v in (a.get("ratings") or {}).items():
                    ratings.setdefault((k["system"], q), []).append((who, float(v)))
    columns = []
    v = np.array(votes, dtype=float).reshape(-1, 3)
    counts = np.bincount(v[:, :2].astype(int).ravel(), minlength=len(systems)) if len(v) else np.zeros(len(systems))
    scored = [k for k in range(len(systems)) if counts[k] >= min_votes]
    bt: dict[str, Any] = {}
    if len(scored) >= 2:
        keep = np.isin(v[:, 0], scored) & np.isin(v[:, 1], scored)
        remap = {s: n for n, s in enumerate(scored)}
        sv = v[keep].copy()
        sv[:, 0] = [remap[int(x)] for x in sv[:, 0]]
        sv[:, 1] = [remap[int(x)] for x in sv[:, 1]]
        point = elo(sv, len(scored))
        rng = np.random.default_rng(seed)
        reps = np.array([elo(sv[rng.integers(0, len(sv), len(sv))], len(scored)) for _ in range(resamples)])
        cis = [percentile_interval(reps[:, n], confidence) for n in range(len(scored))]
        ranks = shared_ranks([c[0] for c in cis], [c[1] for c in cis], higher_is_better=True)
        for n, s in enumerate(scored):
            bt[systems[s]] = {"value": float(point[n]), "ci_low": cis[n][0], "ci_high": cis[n][1], "rank": ranks[n],
                              "votes": int(counts[s])}  # fmt: skip
    columns.append({"key": "listen.bt_elo", "label": "listening Elo (Bradley–Terry)", "higher_is_better": True,
                    "systems": bt})  # fmt: skip
    for q in QUESTIONS:
        col = {}
        for s in systems:
            x = ratings.get((s, q))
            if x:
                low, high = listener_ci(x, len(listeners), resamples=resamples, seed=seed, confidence=confidence)
                col[s] = {"value": float(np.mean([v for _, v in x])), "ci_low": low, "ci_high": high,
                          "ratings": len(x)}  # fmt: skip
        columns.append({"key": f"listen.mos.{q}", "label": f"MOS {LABELS[q]}", "higher_is_better": True,
                        "systems": col})  # fmt: skip
    below = {systems[k]: int(counts[k]) for k in range(len(systems)) if k not in scored}
    return {"page_id": key["page_id"], "listeners": listeners, "excluded": excluded, "votes": int(len(v)),
            "min_votes": min_votes, "below_min_votes": below, "columns": columns}  # fmt: skip
