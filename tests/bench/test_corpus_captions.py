from collections import Counter

import numpy as np
import pytest

from t2mbench.bench.corpus import captions

FIELDS = {
    "composer": "J.S. Bach",
    "title": "Nun danket alle Gott (BWV 252)",
    "instruments": ["violin", "viola", "cello"],
    "tempo": "96 bpm",
    "key": "G major",
    "mood": ["bright", "flowing"],
}


def _split_fields(text):
    """Undo a key: value caption (values here contain no ': ')."""
    out, name = {}, None
    for piece in text.split(", "):
        if ": " in piece:
            name, value = piece.split(": ", 1)
            out[name] = [value]
        else:
            out[name].append(piece)
    return out


def test_key_value_captions_hold_every_field_once_with_list_items_shuffled():
    seen_orders, seen_field_orders = set(), set()
    for seed in range(60):
        text, style = captions.caption(FIELDS, np.random.default_rng(seed))
        if style != captions.KEY_VALUE:
            continue
        parsed = _split_fields(text)
        assert set(parsed) == set(FIELDS)
        for name, value in FIELDS.items():
            items = [value] if isinstance(value, str) else value
            assert sorted(parsed[name]) == sorted(items)
        seen_orders.add(tuple(parsed["instruments"]))
        seen_field_orders.add(tuple(parsed))
    assert len(seen_orders) == 6  # all orders of three instruments occur
    assert len(seen_field_orders) > 10


def test_values_only_captions_list_the_values_without_keys():
    for seed in range(40):
        text, style = captions.caption(FIELDS, np.random.default_rng(seed))
        if style == captions.VALUES_ONLY:
            assert ": " not in text
            values = ["J.S. Bach", "Nun danket alle Gott (BWV 252)", "violin", "viola", "cello", "96 bpm", "G major",
                      "bright", "flowing"]
            assert sorted(text.split(", ")) == sorted(values)


def test_half_the_captions_are_key_value():
    styles = Counter(captions.caption(FIELDS, np.random.default_rng(s))[1] for s in range(400))
    assert set(styles) == {captions.KEY_VALUE, captions.VALUES_ONLY}
    assert 160 < styles[captions.KEY_VALUE] < 240


def test_caption_is_a_function_of_the_stream():
    a = captions.caption(FIELDS, np.random.default_rng(7))
    b = captions.caption(FIELDS, np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize("bpm, bucket", [(60, "slow"), (79, "slow"), (80, "medium"), (120, "medium"), (121, "fast")])
def test_tempo_buckets(bpm, bucket):
    assert captions.tempo_bucket(bpm) == bucket


def test_mood_words_follow_mode_and_tempo():
    assert captions.mood_words("major", 70) == ["bright", "calm"]
    assert captions.mood_words("minor", 140) == ["dark", "lively"]
