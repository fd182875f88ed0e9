import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf

from t2mbench.core import audio as A
from t2mbench.core.errors import AudioError


def _sine(sr=16000, seconds=1.0, freq=440.0, channels=1, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    x = amp * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels)


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_roundtrip_formats(tmp_path, ext):
    x = _sine(channels=2)
    A.save_audio(tmp_path / f"a{ext}", x, 16000)
    y, sr = A.load_audio(tmp_path / f"a{ext}")
    assert sr == 16000 and y.shape == x.shape and y.dtype == np.float32
    tol = 1e-4 if ext != ".ogg" else 0.05  # PCM_16 vs lossy Vorbis
    assert np.abs(y - x).max() < tol


def test_mp3_decodes(tmp_path):
    x = _sine(sr=44100, channels=2)
    sf.write(tmp_path / "a.mp3", x.T, 44100, format="MP3")
    y, sr = A.load_audio(tmp_path / "a.mp3")
    assert sr == 44100 and y.shape[0] == 2
    # an MP3 encoder adds delay and padding; the tone's energy survives
    assert abs(np.sqrt((y**2).mean()) - 0.5 / np.sqrt(2)) < 0.02


def test_unreadable_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioError, match=r"bad\.wav: unreadable or corrupt audio file"):
        A.load_audio(tmp_path / "bad.wav")


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such audio file"):
        A.load_audio(tmp_path / "nope.wav")


def test_unsupported_extension(tmp_path):
    (tmp_path / "a.aiff").write_bytes(b"")
    with pytest.raises(AudioError, match=r"a\.aiff: unsupported audio format '\.aiff'"):
        A.load_audio(tmp_path / "a.aiff")


def test_zero_samples(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: has zero samples"):
        A.load_audio(tmp_path / "empty.wav")


def test_nan_and_inf(tmp_path):
    x = _sine()
    x[0, 10] = np.nan
    sf.write(tmp_path / "nan.wav", x.T, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN or Inf samples"):
        A.load_audio(tmp_path / "nan.wav")


def test_too_short(tmp_path):
    A.save_audio(tmp_path / "s.wav", _sine(seconds=0.5), 16000)
    with pytest.raises(AudioError, match=r"s\.wav: is 0\.500 s long, shorter than the 1 s required"):
        A.load_audio(tmp_path / "s.wav", min_seconds=1.0)


def test_unsupported_sample_rate(tmp_path):
    sf.write(tmp_path / "lo.wav", np.zeros((100, 1), np.float32), 2000)
    with pytest.raises(AudioError, match=r"lo\.wav: unsupported sample rate 2000 Hz; t2mbench reads 4000-384000 Hz"):
        A.load_audio(tmp_path / "lo.wav")


def test_unsupported_channel_count(tmp_path):
    sf.write(tmp_path / "many.wav", np.zeros((100, 10), np.float32), 16000)
    with pytest.raises(AudioError, match=r"many\.wav: unsupported channel count 10; t2mbench reads 1-8 channels"):
        A.load_audio(tmp_path / "many.wav")


def test_stereo_policy_refuses_surround(tmp_path):
    sf.write(tmp_path / "s51.wav", np.zeros((100, 6), np.float32), 16000)
    with pytest.raises(AudioError, match=r"s51\.wav: has 6 channels where stereo is expected"):
        A.load_audio(tmp_path / "s51.wav", channels="stereo")


def test_channel_policies():
    st = np.stack([np.ones(4, np.float32), -np.ones(4, np.float32) * 0.5])
    assert np.allclose(A.set_channels(st, "mono"), 0.25)
    mono = np.arange(4, dtype=np.float32)[None]
    assert np.array_equal(A.set_channels(mono, "stereo"), np.stack([mono[0], mono[0]]))
    assert A.set_channels(st, "keep") is st
    with pytest.raises(ValueError, match="unknown channel policy 'left'"):
        A.set_channels(st, "left")


def test_mono_downmix_happens_before_resampling(tmp_path):
    x = _sine(sr=44100, channels=2)
    x[1] *= -1  # channels cancel: a downmix first gives silence
    A.save_audio(tmp_path / "c.wav", x, 44100, subtype="FLOAT")
    y, sr = A.load_audio(tmp_path / "c.wav", sample_rate=16000, channels="mono")
    assert sr == 16000 and y.shape == (1, 16000) and np.abs(y).max() == 0.0


def test_resample_keeps_a_tone_and_length():
    x = _sine(sr=44100, seconds=1.0, freq=1000.0, channels=2)
    y = A.resample(x, 44100, 48000)
    assert y.shape == (2, 48000)
    spec = np.abs(np.fft.rfft(y[0]))
    assert np.argmax(spec) == 1000  # 1 Hz bins over 1 s
    assert A.resample(x, 44100, 44100) is x


def test_int16_roundtrip_truncates_toward_zero():
    x = np.array([[1.5, 0.99999, -0.5, 1e-5, -1e-5]], np.float32)
    y = A.int16_roundtrip(x)
    expect = np.array([[32767, 32766, -16383, 0, 0]]) / 32767.0
    assert np.allclose(y, expect.astype(np.float32))


def test_peak_normalize_is_joint_over_channels():
    x = np.array([[0.1, -0.2], [0.4, 0.05]], np.float32)
    y = A.peak_normalize(x, -1.0)
    assert np.abs(y).max() == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    assert y[0, 1] / y[1, 0] == pytest.approx(-0.5)
    with pytest.raises(AudioError, match="is digital silence; it cannot be peak-normalised"):
        A.peak_normalize(np.zeros((1, 8), np.float32))


def test_loudness_of_full_scale_997hz_sine_is_minus_3_lufs():
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS
    x = _sine(sr=48000, seconds=5.0, freq=997.0, amp=1.0)
    assert A.loudness(x, 48000) == pytest.approx(-3.01, abs=0.02)


def test_loudness_matches_pyloudnorm():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 44100 * 3)) * 0.1).astype(np.float32)
    x[:, : 44100] *= 0.01
    ref = pyln.Meter(44100).integrated_loudness(x.T.astype(np.float64))
    assert A.loudness(x, 44100) == pytest.approx(ref, abs=0.05)


def test_loudness_normalize_hits_target_and_refuses_silence():
    x = _sine(sr=48000, seconds=2.0, amp=0.1)
    assert A.loudness(A.loudness_normalize(x, 48000, -20.0), 48000) == pytest.approx(-20.0, abs=1e-3)
    with pytest.raises(AudioError, match="is silent"):
        A.loudness_normalize(np.zeros((1, 48000), np.float32), 48000)


def test_fit_length_crops_and_pads():
    x = np.ones((2, 5), np.float32)
    assert A.fit_length(x, 3).shape == (2, 3)
    y = A.fit_length(x, 7)
    assert y.shape == (2, 7) and y[:, 5:].sum() == 0 and y[:, :5].sum() == 10


def test_save_is_atomic_on_failure(tmp_path):
    target = tmp_path / "keep.wav"
    A.save_audio(target, _sine(), 16000)
    before = target.read_bytes()
    with pytest.raises(AudioError):
        A.save_audio(target, np.full((1, 10), np.nan, np.float32), 16000)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


@pytest.mark.parametrize("channels", [1, 2])
def test_float_wavs_hold_the_samples_exactly_and_their_bytes_depend_only_on_them(tmp_path, channels):
    """Written twice, a second apart, the same audio gives the same file (libsndfile's PEAK chunk
    carried a timestamp); soundfile and libsndfile read it back as 32-bit float, bit for bit."""
    import hashlib
    import time

    x = (_sine(sr=16000, channels=channels) * 1.5).astype(np.float32)  # over full scale: kept, not clipped
    A.save_audio(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    time.sleep(1.1)
    A.save_audio(tmp_path / "b.wav", x, 16000, subtype="FLOAT")
    digest = [hashlib.sha256((tmp_path / f"{n}.wav").read_bytes()).hexdigest() for n in "ab"]
    assert digest[0] == digest[1]
    info = sf.info(str(tmp_path / "a.wav"))
    assert (info.format, info.subtype, info.channels, info.samplerate, info.frames) == (
        "WAV", "FLOAT", channels, 16000, x.shape[1])
    y, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32", always_2d=True)
    assert np.array_equal(y.T, x)
    assert (tmp_path / "a.wav").stat().st_size == 12 + 26 + 12 + 8 + 4 * x.size  # RIFF, fmt, fact, data
