"""`Service` without HTTP, with the in-memory cache: cache-aside, micro-batching of concurrent requests, start/stop."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from fusion.errors import BundleIntegrityError, DataValidationError
from fusion.serving.cache import RedisCache
from fusion.serving.service import Service

from tests.support.models import random_instance


def _body(*instances: dict) -> bytes:
    return orjson.dumps({"instances": list(instances)})


def test_a_repeated_instance_is_answered_from_the_cache(service):
    async def run():
        first = await service.predict(_body(random_instance("a", seed=1)))
        await asyncio.wait(service.background)  # the cache write happens after the answer
        again = await service.predict(_body(random_instance("b", seed=1), random_instance("c", seed=2)))
        return first, again

    (first,), (again, other) = asyncio.run(run())
    assert (first["cached"], again["cached"], other["cached"]) == (False, True, False)
    assert (again["series_id"], again["label"], again["probabilities"]) == ("b", first["label"], first["probabilities"])
    assert len(service.cache.data) == 2  # a and c (b has a's samples)
    assert service.cache_stats() == {"hits": 1, "misses": 2, "errors": 0, "enabled": 1, "breaker_open": 0.0}


def test_concurrent_requests_share_one_model_call(service):
    sizes = []
    service.batcher.on_batch = sizes.append

    async def run():
        bodies = [_body(random_instance(f"s{i}", seed=10 + i)) for i in range(5)]
        return await asyncio.gather(*(service.predict(b) for b in bodies))

    answers = asyncio.run(run())
    assert [a[0]["series_id"] for a in answers] == [f"s{i}" for i in range(5)]
    assert sizes == [5]


def test_without_a_cache_every_instance_is_predicted(service):
    plain = Service(service.bundle, service.settings, service.predictor, service.verifier)
    answers = asyncio.run(plain.predict(_body(random_instance("a", seed=1), random_instance("a", seed=1))))
    assert [a["cached"] for a in answers] == [False, False] and plain.lookups is None
    assert plain.cache_stats() == {"enabled": 0}


def test_an_invalid_body_raises_the_predictors_error(service):
    with pytest.raises(DataValidationError, match="instances must be a non-empty list"):
        asyncio.run(service.predict(b'{"instances": []}'))
    assert service.cache.data == {} and service.cache_stats()["misses"] == 0


def test_start_warms_up_and_stop_closes_the_cache(service):
    service.cache.data["k"] = b"v"
    service.start()
    assert service.ready
    asyncio.run(service.stop())
    assert not service.ready and service.cache.data == {}  # MemoryCache.close() empties it


def test_from_bundle_refuses_a_tampered_bundle(bundle_copy, settings):
    (bundle_copy / "labels.json").write_text('["evil"]\n')
    with pytest.raises(BundleIntegrityError, match=r"sha256 mismatch in \['labels.json'\]"):
        Service.from_bundle(bundle_copy, settings)


def test_from_bundle_uses_redis_only_when_configured(bundle_dir, settings):
    assert Service.from_bundle(bundle_dir, settings).cache is None
    redis_settings = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    cache = Service.from_bundle(bundle_dir, redis_settings).cache  # nothing connects before the first request
    assert isinstance(cache, RedisCache) and cache.url == "redis://127.0.0.1:1/0"
