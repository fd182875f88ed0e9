"""The leaf of the stack: plumbing every other package shares and that imports none of them.

Audio I/O (:mod:`.audio`), clip-set manifests (:mod:`.manifest`), the result schema
(:mod:`.results`), weight files (:mod:`.weights`), provenance, errors, atomic file writes,
progress bars, the allocator tuning and the CLI's help format (:mod:`.cli_format`).
"""
