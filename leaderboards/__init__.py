"""Leaderboards: schema, validation, ranking and rendering of published result tables.
Reads results; never computes metrics."""
