"""KafkaSamplesDataset: real sensor samples through a Kafka topic into the canonical table."""

from __future__ import annotations

import pandas as pd
import pytest

from fusion.events.kafka_source import KafkaSamplesDataset
from fusion.errors import SourceError
from fusion.pipelines.ingest.nodes import data_hash, to_canonical


def test_samples_round_trip_the_topic_into_the_canonical_table(broker, small_watch, data_params):
    ds = KafkaSamplesDataset(topic="src.samples", bootstrap=broker.bootstrap, batch_rows=250, idle_timeout_s=5)
    ds.save(small_watch)
    raw = ds.load()
    assert len(raw) == len(small_watch) == 1800
    # partitions come back one after another: order by (series, t) to compare with the file
    key = ["series_id", "t"]
    got = raw.sort_values(key).reset_index(drop=True)
    want = small_watch.sort_values(key).reset_index(drop=True)
    want = want.astype({c: str for c in want.columns if isinstance(want[c].dtype, pd.CategoricalDtype)})
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    canon = to_canonical(got, data_params)
    assert data_hash(canon) == data_hash(to_canonical(want, data_params))


def test_the_ingest_pipeline_reads_a_catalog_entry_of_this_type(broker, small_watch, data_params):
    """The `raw_samples` entry a `conf/<env>/catalog.yml` would hold, through Kedro's catalog and the ingest pipeline."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from fusion.pipelines.ingest.pipeline import create_pipeline

    KafkaSamplesDataset(topic="src.ingest", bootstrap=broker.bootstrap).save(small_watch)
    catalog = DataCatalog.from_config({"raw_samples": {
        "type": "fusion.events.kafka_source.KafkaSamplesDataset", "topic": "src.ingest", "bootstrap": broker.bootstrap,
        "idle_timeout_s": 5}})
    catalog["params:data"] = MemoryDataset(data_params)
    for name in ("canonical_samples", "ingest_report"):
        catalog[name] = MemoryDataset(copy_mode="assign")
    SequentialRunner().run(create_pipeline(), catalog)
    report = catalog.load("ingest_report")
    assert (report["rows"], report["series"], report["channels"]) == (1800, 6, data_params["channels"])
    assert sum(report["labels"].values()) == 1800


def test_loads_are_bounded_by_count_and_offset(broker, small_watch):
    ds = KafkaSamplesDataset(topic="src.bounded", bootstrap=broker.bootstrap, batch_rows=100)
    ds.save(small_watch.head(1000))  # 10 messages of 100 samples
    assert len(KafkaSamplesDataset(topic="src.bounded", bootstrap=broker.bootstrap, max_messages=3).load()) == 300
    per_partition = KafkaSamplesDataset(topic="src.bounded", bootstrap=broker.bootstrap, until_offset=1).load()
    assert 100 <= len(per_partition) <= 400 and len(per_partition) % 100 == 0  # ≤ 1 message from each partition


def test_a_missing_topic_is_a_source_error(broker):
    with pytest.raises(Exception, match="topic 'src.nothing' does not exist") as info:
        KafkaSamplesDataset(topic="src.nothing", bootstrap=broker.bootstrap, idle_timeout_s=1).load()
    assert isinstance(info.value.__cause__ or info.value, SourceError)
