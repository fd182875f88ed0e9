"""The CPU allowance (affinity mask capped by cgroup v1/v2 quotas, on mocked cgroup files), the
environment that makes thread pools sleep, and --threads at the command line."""

from __future__ import annotations

import argparse

import pytest
import torch

from t2mbench.core import threads


def _v2(tmp_path, cpu_max: dict[str, str], path: str = "/user.slice/job"):
    (tmp_path / "proc").write_text(f"0::{path}\n")
    for rel, text in cpu_max.items():
        d = tmp_path / "cg" / rel.strip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpu.max").write_text(text)
    return {"cgroup_root": tmp_path / "cg", "proc_cgroup": tmp_path / "proc"}


def test_affinity_without_quota(tmp_path):
    files = _v2(tmp_path, {"/user.slice/job": "max 100000\n", "/": "max 100000\n"})
    assert threads.cpu_allowance(affinity={0, 1, 2, 3, 4, 5}, **files) == 6


def test_v2_quota_caps_the_affinity_floor_and_at_least_one(tmp_path):
    assert threads.cpu_allowance(affinity=set(range(16)), **_v2(tmp_path, {"/user.slice/job": "250000 100000\n"})) == 2
    assert threads.cpu_allowance(affinity=set(range(16)), **_v2(tmp_path, {"/user.slice/job": "50000 100000\n"})) == 1
    assert threads.cpu_allowance(affinity={3}, **_v2(tmp_path, {"/user.slice/job": "800000 100000\n"})) == 1


def test_v2_tightest_quota_on_the_path_wins(tmp_path):
    files = _v2(tmp_path, {"/user.slice/job": "max 100000\n", "/user.slice": "300000 100000\n", "/": "max 100000\n"})
    assert threads.cgroup_cpu_quota(files["cgroup_root"], files["proc_cgroup"]) == 3.0
    assert threads.cpu_allowance(affinity=set(range(8)), **files) == 3


def test_v1_quota(tmp_path):
    (tmp_path / "proc").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    d = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc"
    d.mkdir(parents=True)
    (d / "cpu.cfs_quota_us").write_text("150000\n")
    (d / "cpu.cfs_period_us").write_text("100000\n")
    files = {"cgroup_root": tmp_path / "cg", "proc_cgroup": tmp_path / "proc"}
    assert threads.cpu_allowance(affinity=set(range(8)), **files) == 1
    (d / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert threads.cpu_allowance(affinity=set(range(8)), **files) == 8


def test_no_cgroup_files_means_affinity_only(tmp_path):
    assert threads.cgroup_cpu_quota(tmp_path / "none", tmp_path / "no-proc") is None
    assert threads.cpu_allowance(affinity={0, 1}, cgroup_root=tmp_path, proc_cgroup=tmp_path / "no-proc") == 2


def test_prepare_environment_sets_sleeping_pools_and_counts_but_keeps_user_values(monkeypatch):
    monkeypatch.setattr(threads, "cpu_allowance", lambda: 3)
    env = {"OMP_WAIT_POLICY": "ACTIVE", "MKL_NUM_THREADS": "7"}
    assert threads.prepare_environment(env) == 3
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "4", "OMP_NUM_THREADS": "3",
                   "OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "7"}


def test_configure_sets_torch_blas_and_child_environment(monkeypatch):
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    for name in threads.COUNT_VARIABLES:
        monkeypatch.setenv(name, "1")
    try:
        assert threads.configure(2) == 2
        assert torch.get_num_threads() == 2
        assert all(lib["num_threads"] == 2 for lib in threadpool_info() if lib["user_api"] == "blas")
        import os

        assert [os.environ[n] for n in threads.COUNT_VARIABLES] == ["2", "2", "2"]
    finally:
        threads.configure(before)


def test_one_blas_thread_holds_blas_at_one_thread_and_gives_the_count_back():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    before = torch.get_num_threads()
    try:
        threads.configure(2)
        with threads.one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {2}
    finally:
        threads.configure(before)


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_threads_option_rejects_non_positive_integers(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be a positive integer, got '{text}'"):
        threads.thread_count(text)
    assert threads.thread_count("3") == 3
