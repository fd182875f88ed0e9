"""Standalone upstream-runner scripts; never imported by the product, only run with another python in a subprocess."""
