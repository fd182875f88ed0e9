"""The float32 real FFT of TensorFlow 2.13 on the CPU (``tf.signal.rfft``), reproduced bit for bit in torch.

Why: stable-audio-metrics pins TensorFlow 2.13.1, whose CPU FFT kernel is Eigen's ``TensorFFT``
(TensorFlow moved to DUCC in later versions). For a power-of-two length that is a recursive radix-2
Cooley-Tukey transform in single precision whose twiddle factors come from a float32 recurrence
(``w = w * (1 + wp)^4``), so its results carry rounding errors ~250x larger than an FFT with exact
twiddles (measured on length 2048: max abs error 1.0e-3 on outputs up to 127, against 4.1e-6 for
pocketfft in float32). OpenL3's dB front end keeps 8 decades of amplitude, so in the mel bands that hold
no signal (above 22.05 kHz for every 44.1 kHz evaluation) openl3 sees that rounding noise, and
FD_openl3 depends on it (see metrics/embedders/openl3.py).

The transform here performs Eigen's operations in Eigen's order, each rounded to float32 (no fused
multiply-add: TensorFlow's wheels are built for AVX without FMA), vectorised over rows:

1. bit-reversal permutation (``scramble_FFT``);
2. ``butterfly_8`` on each group of 8 (written out for a real input: the imaginary parts are 0 and
   every operation on them is exact, so skipping them changes no bit);
3. ``butterfly_1D_merge`` for m = 16, 32, ..., n: ``t = (x[i + m/2] * w_j) * p_k`` with
   ``w_{j+1} = w_j * (1 + wp)^4`` from ``w_0 = 1`` and ``p_k = (1 + wp)^k`` (k = i mod 4; k = 0 skips
   the second product, which is exact: a product with 1 + 0i rounds to itself), then
   ``x[i + m/2] = x[i] - t``, ``x[i] += t``. ``wp = (-2 sin²(π/m), -sin(2π/m))`` from Eigen's 15-digit
   tables, rounded to float32.

Checked against ``tf.signal.rfft`` of TensorFlow 2.13.1 (tests/core/test_eigen_fft.py: equal bits).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

# Eigen's m_sin_PI_div_n_LUT[p] = -2 sin²(π / 2^p) and m_minus_sin_2_PI_div_n_LUT[p] = -sin(2π / 2^p),
# as printed in TensorFFT.h (15 significant digits), for p = 4 .. 15 (transform sizes 16 .. 32768)
_SIN_PI_DIV_N = {
    4: -0.0761204674887130, 5: -0.0192147195967696, 6: -0.00481527332780311, 7: -0.00120454379482761,
    8: -3.01181303795779e-04, 9: -7.52981608554592e-05, 10: -1.88247173988574e-05, 11: -4.70619042382852e-06,
    12: -1.17654829809007e-06, 13: -2.94137117780840e-07, 14: -7.35342821488550e-08, 15: -1.83835707061916e-08,
}  # fmt: skip
_MINUS_SIN_2PI_DIV_N = {
    4: -3.82683432365090e-01, 5: -1.95090322016128e-01, 6: -9.80171403295606e-02, 7: -4.90676743274180e-02,
    8: -2.45412285229123e-02, 9: -1.22715382857199e-02, 10: -6.13588464915448e-03, 11: -3.06795676296598e-03,
    12: -1.53398018628477e-03, 13: -7.66990318742704e-04, 14: -3.83495187571396e-04, 15: -1.91747597310703e-04,
}  # fmt: skip
_SQRT2DIV2 = np.float32(0.7071067811865476)
MAX_LENGTH = 1 << 15
_ROWS = 128  # rows transformed together: the working set (~6 arrays of rows x n float32) stays in cache


def _cmul(ar: np.float32, ai: np.float32, br: np.float32, bi: np.float32) -> tuple[np.float32, np.float32]:
    """float32 complex product, each operation rounded (numpy float32 scalars)."""
    return np.float32(ar * br - ai * bi), np.float32(ar * bi + ai * br)


@lru_cache(maxsize=16)
def _merge_twiddles(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage m = 2^p of ``butterfly_1D_merge``: ``w_j`` (j < m/8) and ``p_k = (1 + wp)^k`` (k < 4) as
    complex float32 pairs ``[m/8, 2]`` and ``[4, 2]``, from Eigen's float32 recurrence."""
    one_r, one_i = np.float32(np.float32(_SIN_PI_DIV_N[p]) + np.float32(1)), np.float32(_MINUS_SIN_2PI_DIV_N[p])
    p2 = _cmul(one_r, one_i, one_r, one_i)
    p3 = _cmul(*p2, one_r, one_i)
    p4 = _cmul(*p3, one_r, one_i)
    w, ws = (np.float32(1), np.float32(0)), []
    for _ in range((1 << p) // 8):
        ws.append(w)
        w = _cmul(*w, *p4)
    return np.array(ws, dtype=np.float32), np.array([(1, 0), (one_r, one_i), p2, p3], dtype=np.float32)


def _bit_reversal(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)])


@lru_cache(maxsize=8)
def _tables(n: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
    """Bit-reversal permutation and, per merge stage m = 16 .. n, the twiddles ``(w_re, w_im, p_re, p_im)``
    ``[m/2, 1]`` of each position of a group's lower half (position i: ``w_{i // 4}``, ``p_{i mod 4}``)."""
    stages = []
    for p in range(4, n.bit_length()):
        ws, ps = _merge_twiddles(p)
        wt, pt = np.repeat(ws, 4, axis=0), np.tile(ps, ((1 << p) // 8, 1))
        stages.append(tuple(torch.from_numpy(np.ascontiguousarray(a[:, j : j + 1])) for a in (wt, pt) for j in (0, 1)))
    return torch.from_numpy(_bit_reversal(n)), stages


def _butterfly8_real(d: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen's ``butterfly_8`` of real groups: ``d`` holds the 8 inputs ``[n/8, R]`` each → ``(re, im) [n/8, 8, R]``."""
    s = _SQRT2DIV2
    a0, a1, a2, u3 = d[0] + d[1], d[0] - d[1], d[2] + d[3], d[2] - d[3]  # t1_3 = (0, -u3)
    a4, a5, a6, u7 = d[4] + d[5], d[4] - d[5], d[6] + d[7], d[6] - d[7]  # t1_7 = (0, -u7)
    b0, b2, b4, v6 = a0 + a2, a0 - a2, a4 + a6, a4 - a6  # t2_6 = (0, -v6)
    as_, us = a5 * s, u7 * s
    r5, i5 = as_ - us, -(as_ + us)  # t2_5 = (a5, -u7) * (s, -s)
    r7 = us - as_  # t2_7 = (a5, u7) * (-s, -s) = (r7, i5)
    zero = torch.zeros_like(b0)
    re = torch.stack([b0 + b4, a1 + r5, b2, a1 + r7, b0 - b4, a1 - r5, b2, a1 - r7], 1)
    im = torch.stack([zero, i5 - u3, -v6, u3 + i5, zero, -u3 - i5, v6, u3 - i5], 1)
    return re, im


def _fft_columns(x: torch.Tensor, perm: torch.Tensor, stages: list) -> torch.Tensor:
    """Eigen's forward FFT of real rows ``x [R, n]`` → complex64 ``[R, n/2 + 1]``.

    Works on the transposed layout ``[n, R]`` (rows innermost), so every operation runs over contiguous
    runs of ``R`` values with one twiddle per position."""
    rows, n = x.shape
    cols = x.t()[perm].reshape(n // 8, 8, rows)
    re, im = _butterfly8_real(cols.unbind(1))
    tr, ti, tmp = (torch.empty(n // 2, rows, dtype=x.dtype, device=x.device) for _ in range(3))
    for k, (wr, wi, pr, pi) in enumerate(stages):
        m = 16 << k
        shape = (n // m, 2, m // 2, rows)
        re, im = re.reshape(shape), im.reshape(shape)
        lr, li, hr, hi = re[:, 0], im[:, 0], re[:, 1], im[:, 1]
        ur, ui, t = tr.view(n // m, m // 2, rows), ti.view(n // m, m // 2, rows), tmp.view(n // m, m // 2, rows)
        torch.mul(hr, wr, out=ur), torch.mul(hi, wi, out=t), ur.sub_(t)  # x[i + m/2] * w_j
        torch.mul(hr, wi, out=ui), torch.mul(hi, wr, out=t), ui.add_(t)
        torch.mul(ur, pr, out=hr), torch.mul(ui, pi, out=t), hr.sub_(t)  # * (1 + wp)^k, into hi's storage
        torch.mul(ur, pi, out=hi), torch.mul(ui, pr, out=t), hi.add_(t)
        ur.copy_(hr), ui.copy_(hi)
        torch.sub(lr, ur, out=hr), torch.sub(li, ui, out=hi)  # x[i + m/2] = x[i] - t
        lr.add_(ur), li.add_(ui)  # x[i] += t
    return torch.complex(re.reshape(n, rows)[: n // 2 + 1].t(), im.reshape(n, rows)[: n // 2 + 1].t())


def eigen_rfft(x: torch.Tensor) -> torch.Tensor:
    """``tf.signal.rfft`` of TensorFlow 2.13 on the CPU, bit for bit, of ``x [..., n]`` (float32, n a power
    of two from 16 to 32768) → complex64 ``[..., n/2 + 1]``: the reference that :func:`eigen_dft_matrix`
    linearises (tests/core/test_eigen_fft.py checks both against TensorFlow).

    About 14 elementwise passes per stage: ~20x slower than ``torch.fft.rfft``, so the OpenL3 front end
    uses :func:`eigen_dft_matrix` instead.

    Raises:
        ValueError: ``x`` is not float32/float64 or its length is not a supported power of two.
    """
    n = x.shape[-1]
    if x.dtype != torch.float32:
        raise ValueError(f"eigen_rfft reproduces float32 arithmetic; got {x.dtype}")
    if n < 16 or n > MAX_LENGTH or n & (n - 1):
        raise ValueError(f"eigen_rfft needs a power-of-two length from 16 to {MAX_LENGTH}, got {n}")
    perm, stages = _tables(n)
    flat = x.reshape(-1, n)
    perm = perm.to(x.device)
    stages = [tuple(t.to(x.device) for t in s) for s in stages]
    out = [_fft_columns(flat[i : i + _ROWS], perm, stages) for i in range(0, flat.shape[0], _ROWS)]
    return torch.cat(out).reshape(*x.shape[:-1], n // 2 + 1)


@lru_cache(maxsize=2)
def eigen_dft_matrix(n: int) -> torch.Tensor:
    """The linear map of :func:`eigen_rfft` without its data rounding, as a float32 matrix ``[n, n + 2]``
    (columns: the real parts of bins 0 .. n/2, then their imaginary parts): ``x @ M`` is TensorFlow 2.13's
    rfft up to the rounding of the data.

    Radix-2 decimation in time sends input ``j`` (at bit-reversed position ``r``) to bin ``k`` through one
    butterfly per stage m = 2^s; where bit s-1 of ``r`` is set it is multiplied by ``±T_m[k mod m/2]``
    (the sign is bit s-1 of ``k``), so ``M[j, k]`` is the product of those factors, formed here in
    float64 from Eigen's twiddles: ``T_2 = [1]``, ``T_4 = [1, -i]``, ``T_8 = [1, (s, -s), -i, (-s, -s)]``
    with ``s`` = float32(√2/2) (``butterfly_4``/``butterfly_8``) and ``T_m[q] = w_{q // 4} p_{q mod 4}``
    for m ≥ 16 (:func:`_merge_twiddles`).

    Nearly all of TensorFlow's error is in these twiddles (data-independent), so the map carries it: on
    windowed 48 kHz audio frames, |tf.signal.rfft - x @ M| has a median of 6e-7 in the bins above 22.05 kHz
    of band-limited audio, where the exact DFT differs from tf.signal.rfft by 1e-5 and is itself ~2e-6
    (tests/core/test_eigen_fft.py).
    """
    bits = n.bit_length() - 1
    s = float(_SQRT2DIV2)
    tables = {1: np.array([1.0 + 0j]), 2: np.array([1.0, -1j]), 3: np.array([1.0, s - 1j * s, -1j, -s - 1j * s])}
    for p in range(4, bits + 1):
        ws, ps = (a.astype(np.float64) for a in _merge_twiddles(p))
        w, pk = ws[:, 0] + 1j * ws[:, 1], ps[:, 0] + 1j * ps[:, 1]
        tables[p] = (w[:, None] * pk[None, :]).reshape(-1)
    r, k = _bit_reversal(n), np.arange(n // 2 + 1)
    coef = np.ones((n, n // 2 + 1), dtype=np.complex128)
    for p in range(1, bits + 1):
        half = 1 << (p - 1)
        rows = np.flatnonzero(r & half)
        coef[rows] *= tables[p][k % half] * np.where(k & half, -1.0, 1.0)
    return torch.from_numpy(np.concatenate([coef.real, coef.imag], axis=1).astype(np.float32))
