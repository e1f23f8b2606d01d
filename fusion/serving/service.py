"""The inference service behind the HTTP layer: the verified bundle, its `Predictor`, the token verifier, the cache and
the micro-batchers, built once per app; `Service.predict(body)` turns a request body into predictions.

It knows nothing of HTTP: the fast path (`fusion.serving.fastpath`) and the FastAPI routes (`fusion.serving.routes`)
call it. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from fusion.bundle.verify import Bundle, load_bundle
from fusion.config import Settings
from fusion.inference.predictor import Predictor
from fusion.serving.auth import TokenVerifier
from fusion.serving.batching import MicroBatcher
from fusion.serving.cache import Cache, RedisCache, cache_key

__all__ = ["Service"]

log = logging.getLogger("fusion.serving")
DRAIN_S = 1.0  # at shutdown, wait this long for pending cache writes (each is bounded by the cache's own timeouts)


@dataclass
class Service:
    """Everything a request needs, built once per app. `cache` is a `RedisCache` in production (`from_bundle`), a
    `MemoryCache` in unit tests, or None (no cache)."""
    bundle: Bundle
    settings: Settings
    predictor: Predictor
    verifier: TokenVerifier
    cache: Cache | None = None
    freeze_gc: bool = False  # gc.freeze() after warm-up: process-wide, so only a process that only serves asks for it
    ready: bool = False
    batcher: MicroBatcher = field(init=False)  # model calls
    lookups: MicroBatcher | None = field(init=False)  # cache reads (None without a cache)
    background: set[asyncio.Task] = field(default_factory=set, init=False)  # cache writes still running

    def __post_init__(self) -> None:
        self.batcher = MicroBatcher(self.predictor.probabilities)
        self.lookups = MicroBatcher(self.cache.get_many) if self.cache is not None else None

    @classmethod
    def from_bundle(cls, bundle_dir: str | Path | Bundle, settings: Settings, compile: bool = False,
                    freeze_gc: bool = False) -> Service:
        """The service of the bundle at `bundle_dir` (or of an already verified `Bundle`, whose bytes are what was
        checked); raises `BundleIntegrityError` if it does not verify."""
        bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
        predictor = bundle.predictor(max_instances=settings.max_instances, compile=compile)
        cache = RedisCache(settings.redis_url) if settings.redis_url else None
        return cls(bundle, settings, predictor, TokenVerifier.from_settings(settings), cache, freeze_gc)

    async def predict(self, body: bytes) -> list[dict]:
        "Predictions for a request body: cached ones from the cache, the rest from one micro-batched model call."
        series = self.predictor.validate_json(body)
        keys = [cache_key(self.bundle.digest, s.x) for s in series] if self.lookups else []
        found = await self.lookups(keys) if self.lookups else [None] * len(series)
        results: list[dict | None] = [None] * len(series)
        misses = []
        for i, (s, value) in enumerate(zip(series, found, strict=True)):
            if value is not None:
                results[i] = {"series_id": s.series_id, **orjson.loads(value), "cached": True}
            else:
                misses.append(i)
        if misses:
            probs = await self.batcher([series[i].x for i in misses])
            fresh = {}
            for i, p in zip(misses, probs, strict=True):
                entry = self.predictor.format(series[i].series_id, p)
                results[i] = {**entry, "cached": False}
                if self.lookups:
                    fresh[keys[i]] = orjson.dumps({"label": entry["label"], "probabilities": entry["probabilities"]})
            if fresh:
                self._write_later(fresh)
        return results

    def _write_later(self, items: dict[str, bytes]) -> None:
        "Write cache entries after the response, off the request's path."
        task = asyncio.create_task(self.cache.set_many(items, self.settings.cache_ttl_s))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def cache_stats(self) -> dict[str, float]:
        "Counters of the cache for `/metrics` (`enabled` 0 without one)."
        if self.cache is None:
            return {"enabled": 0}
        s, breaker = self.cache.stats, getattr(self.cache, "breaker", None)
        return {"hits": s.hits, "misses": s.misses, "errors": s.errors, "enabled": 1,
                "breaker_open": float(breaker is not None and breaker.state != "closed")}

    def start(self) -> None:
        "Warm the model up (compiling the feature path when asked), then report ready."
        calls = self.predictor.warmup()
        if self.freeze_gc:  # the bundle, torch and the compiled graphs live as long as the process: no GC pass for them
            gc.collect()
            gc.freeze()
        self.ready = True
        log.info("ready", extra={"model": self.bundle.name, "version": self.bundle.version, "warmup_calls": calls,
                                 "cache": self.cache is not None})

    async def stop(self) -> None:
        "Report not ready, let pending cache writes finish, close the cache."
        self.ready = False
        if self.background:
            await asyncio.wait(self.background, timeout=DRAIN_S)
        if self.cache is not None:
            await self.cache.close()
        log.info("stopped")
