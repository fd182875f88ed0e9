"""Signal helpers that re-implement the upstream front ends in numpy/torch, with no metric in them:

- :mod:`~t2mbench.core.dsp.filterbanks`: librosa / torchaudio / Kaldi mel filterbanks;
- :mod:`~t2mbench.core.dsp.chroma`: librosa 0.10 ``chroma_stft`` with tuning estimation;
- :mod:`~t2mbench.core.dsp.resample_hann`: torchaudio's default Hann-windowed sinc resampler;
- :mod:`~t2mbench.core.dsp.resample_sinc`: resampy 0.2.2's Kaiser-windowed sinc (OpenL3's).
"""
