"""The run the hooks share: a value made once by whoever asks first, one run per Kedro run id, the trace id's origin."""

from __future__ import annotations

import itertools

import pytest
from kedro.io import DataCatalog, MemoryDataset

from fusion.errors import ConfigError
from fusion.names import INGEST_REPORT
from fusion.tracking.run import Deferred, Run, Runs


def _chain(made: list) -> dict[str, Deferred]:
    "`c` needs `b`, `b` needs `a`; each notes in `made` when it is made."
    cells = {k: Deferred(k) for k in "abc"}
    cells["a"].provide(lambda: made.append("a") or 1)
    cells["b"].provide(lambda: made.append("b") or cells["a"].result() + 1)
    cells["c"].provide(lambda: made.append("c") or cells["b"].result() + 1)
    return cells


@pytest.mark.parametrize("order", ["".join(p) for p in itertools.permutations("abc")])
def test_a_chain_of_deferred_values_is_made_once_and_in_order_whoever_asks_first(order):
    made: list[str] = []
    cells = _chain(made)
    assert [cells[k].result() for k in order] == [{"a": 1, "b": 2, "c": 3}[k] for k in order]
    assert sorted(made) == ["a", "b", "c"]  # each made once, whoever asked for it first


def test_a_deferred_value_without_a_maker_is_none_and_a_makers_error_reaches_every_caller():
    assert Deferred("unmade").result() is None
    failing, calls = Deferred("exported"), []
    failing.provide(lambda: calls.append(1) or 1 / 0)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            failing.result()
    assert calls == [1]
    with pytest.raises(ConfigError, match="'exported' is provided twice or after it was asked for"):
        failing.provide(lambda: 2)


def test_every_hook_of_one_run_gets_the_same_run_and_the_next_run_a_new_one(tmp_path):
    runs, catalog = Runs(), DataCatalog({"parameters": MemoryDataset({"export": {"out_dir": "x"}})})
    with pytest.raises(ConfigError, match="no pipeline run has begun"):
        _ = runs.current
    first = runs.begin({"run_id": "a", "project_path": str(tmp_path)}, catalog)
    assert runs.begin({"run_id": "a", "project_path": str(tmp_path)}, catalog) is first is runs.current
    assert first.parameters == {"export": {"out_dir": "x"}} and first.settings.project_root == tmp_path
    second = runs.begin({"run_id": "b", "project_path": str(tmp_path)}, catalog)
    assert second is not first and second.trace_id != first.trace_id


def test_the_trace_id_comes_from_the_runtime_params_else_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_TRACE_ID", "cd" * 16)
    assert Run.start("k", {"project_path": str(tmp_path)}, {}).trace_id == "cd" * 16
    given = Run.start("k", {"project_path": str(tmp_path), "runtime_params": {"trace_id": "ef" * 16, "source": "trigger",
                                                                              "data_hash": "01" * 32}}, {})
    assert (given.trace_id, given.source, given.data_hash) == ("ef" * 16, "trigger", "01" * 32)
    given.record({INGEST_REPORT: {"data_hash": "23" * 32}, "feature_table": object()})
    assert given.data_hash == "23" * 32 and list(given.outputs) == [INGEST_REPORT]
