"""What the parity tests compare: the largest absolute error relative to the reference's largest value."""

import numpy as np


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got − ref| / max |ref| (the figure every parity fixture's tolerance is stated in)."""
    return float(np.abs(got - ref).max() / np.abs(ref).max())
