
import pandas as pd
import pytest

from t2mbench.core import results
from t2mbench.core.errors import T2MBenchError


def rows():
    base = {"run_id": "r1", "system": "tiny ddim-10", "model": "tiny", "sampler": "ddim", "steps": 10, "cfg": 3.0,
            "seed": 1, "sampler_options": results.canonical_options({"eta": 0.5})}  # fmt: skip
    return [
        {**base, "clip_id": "a", "metric": "clap", "kind": "clip", "value": 0.25},
        {**base, "clip_id": "b", "metric": "clap", "kind": "clip", "value": 0.5},
        {**base, "metric": "clap", "kind": "aggregate", "value": 0.375, "ci_low": 0.25, "ci_high": 0.5},
        {**base, "metric": "nfe", "kind": "generation", "value": 10.0},
    ]


def test_frame_has_the_schema_columns_dtypes_and_version():
    t = results.frame(rows())
    assert list(t.columns) == list(results.COLUMNS)
    assert {c: str(t[c].dtype) for c in t.columns} == results.COLUMNS
    assert t.schema_version.tolist() == [1, 1, 1, 1]
    assert t.sampler_options[0] == '{"eta":0.5}'
    assert t.clip_id.isna().tolist() == [False, False, True, True]
    assert t.ci_low.isna().tolist() == [True, True, False, True]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_then_read_round_trips_exactly(tmp_path, suffix):
    t = results.frame(rows())
    results.write(t, tmp_path, "results")
    pd.testing.assert_frame_equal(results.read(tmp_path / f"results{suffix}"), t)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "per-clip"}, "unknown kind 'per-clip'; kinds are clip, aggregate, generation"),
        ({"steps": "ten"}, "column 'steps' row 0: 'ten' is not a number"),
        ({"steps": 2.5}, "column 'steps' row 0: 2.5 is not an integer"),
        ({"metric": ""}, "column 'metric' row 0 is empty"),
        ({"run_id": None}, "column 'run_id' row 0 is empty"),
        ({"clip_id": None}, "row 0: a clip row without clip_id"),
    ],
)
def test_validate_names_the_first_problem(change, message):
    bad = rows()
    bad[0] = {**bad[0], **change}
    with pytest.raises(results.SchemaError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        results.frame(bad)


def test_duplicate_keys_and_unknown_columns_are_refused():
    with pytest.raises(results.SchemaError, match="duplicate result key .*'clip_id': 'a', 'metric': 'clap'"):
        results.frame(rows() + rows()[:1])
    with pytest.raises(results.SchemaError, match="^unknown result columns colour; the schema has schema_version"):
        results.frame([{**rows()[0], "colour": "red"}])
    assert issubclass(results.SchemaError, T2MBenchError)  # the CLI makes it one line, exit 2


def test_a_version_0_scoring_table_is_upgraded(tmp_path):
    """The scores.parquet written before the schema: run attributes as text, no version column."""
    v0 = pd.DataFrame(
        [["r", "sys", "euler", "8", "3.0", "200", "c1", "sisdr", "clip", -3.5, None, None],
         ["r", "sys", "euler", "8", "3.0", None, None, "sisdr", "aggregate", -3.5, -4.0, -3.0],
         ["r", "sys", "euler", '"x"', "nan", None, None, "fd", "aggregate", 12.0, None, None]],
        columns=list(results.V0_COLUMNS),
    )  # fmt: skip
    v0.to_parquet(tmp_path / "scores.parquet", index=False)
    t = results.read(tmp_path / "scores.parquet")
    assert list(t.columns) == list(results.COLUMNS) and set(t.schema_version) == {1}
    assert t.steps.tolist()[:2] == [8, 8] and t.steps.isna().tolist()[2]  # '"x"' is not a step count
    assert t.cfg.tolist()[:2] == [3.0, 3.0] and t.cfg.isna()[2]
    assert t.seed[0] == 200 and t.seed.isna()[1]
    assert t.cell.isna().all() and t.model.isna().all()
    assert t.value.tolist() == [-3.5, -3.5, 12.0] and t.ci_low[1] == -4.0 and t.ci_low.isna()[0]


def test_newer_or_foreign_tables_are_refused_naming_both_versions(tmp_path):
    newer = results.frame(rows()).assign(schema_version=2)
    newer.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(results.SchemaError, match=r"new.csv has result schema version 2; this t2mbench reads "
                                                  r"versions 0 to 1: upgrade t2mbench$"):  # fmt: skip
        results.read(tmp_path / "new.csv")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(results.SchemaError, match=r"other.csv is not a t2mbench result table \(no schema_version; "
                                                  r"columns a\); this t2mbench reads result schema versions 0 to 1"):
        results.read(tmp_path / "other.csv")
    with pytest.raises(results.SchemaError, match=r"t.json: a result table is .parquet or .csv"):
        results.read(tmp_path / "t.json")


def test_concat_keeps_keys_unique():
    a = results.frame(rows())
    b = results.frame({**r, "run_id": "r2"} for r in rows())
    assert len(results.concat([a, b])) == 8
    with pytest.raises(results.SchemaError, match="duplicate result key"):
        results.concat([a, a])
    assert len(results.concat([])) == 0
