"""Comparing result tables of runs that differ only in measured time."""

import pandas as pd


def untimed(table: pd.DataFrame) -> pd.DataFrame:
    """Every row but the measured seconds (which differ run to run): metrics, clips and NFE."""
    return table[(table.kind != "generation") | (table.metric == "nfe")].reset_index(drop=True)
