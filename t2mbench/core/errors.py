"""User-facing error types shared by every t2mbench package.

Library code raises these with a message that names the file or argument and the fix;
only the CLI turns them into a one-line message and a non-zero exit code.
"""

from __future__ import annotations


class T2MBenchError(Exception):
    """Base class of every error a user can cause (bad input, missing weights, bad config)."""


class AudioError(T2MBenchError, ValueError):
    """Audio that cannot be used: unreadable, empty, non-finite, too short, unsupported."""


class ConfigError(T2MBenchError, ValueError):
    """A malformed or unknown model, metric, sampler or run configuration."""


class ManifestError(T2MBenchError, ValueError):
    """A manifest or external set that is malformed, or whose ids do not match."""


class WeightsError(T2MBenchError):
    """A weight file that is missing, truncated, or not the expected file."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """A weight file that is not on disk; the message says where to put it."""


class ChecksumError(WeightsError):
    """A weight file whose sha256 differs from the published one."""
