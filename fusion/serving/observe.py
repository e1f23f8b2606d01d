"""Observability of the inference service: W3C trace context, JSON logs that carry the trace id, Prometheus metrics.

One pure-ASGI middleware (`ObserveMiddleware`), the outermost layer of the app, continues or starts the trace of every
request (the fast path's and FastAPI's alike), answers with a `traceparent` header, counts the request by route and
status, observes its latency and writes one JSON log line. Metric names are those of `fusion.names`.
Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fusion.config import new_trace_id
from fusion.names import (METRIC_BATCH_SERIES, METRIC_CACHE_BREAKER_OPEN, METRIC_CACHE_ENABLED, METRIC_CACHE_ERRORS,
                          METRIC_CACHE_HITS, METRIC_CACHE_MISSES, METRIC_LATENCY, METRIC_MODEL_INFO, METRIC_PREDICTIONS,
                          METRIC_REQUESTS)

__all__ = ["TRACE_ID", "parse_traceparent", "JsonFormatter", "configure_logging", "Metrics", "ObserveMiddleware"]

TRACE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("fusion_trace_id", default=None)
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
log = logging.getLogger("fusion.serving")


def parse_traceparent(value: str | None) -> str | None:
    "The trace id of a valid W3C `traceparent` header value (version 00..fe, non-zero ids), else None."
    m = _TRACEPARENT.match((value or "").strip().lower())
    if not m or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    return m.group(2)


_RECORD_KEYS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    "One JSON object per line: ts, level, logger, msg, trace_id and any `extra` fields."

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
                 "trace_id": TRACE_ID.get()}
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_KEYS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    "Send every log record (fusion's and uvicorn's) to stderr as JSON lines; uvicorn's access log is replaced by ours."
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"  # ObserveMiddleware logs each request


class Metrics:
    "The service's Prometheus metrics, in a registry of its own (so several apps can live in one process)."

    def __init__(self, model_info: dict[str, str], cache_stats: Callable[[], dict[str, float]]):
        self.registry = CollectorRegistry()
        self.requests = Counter(METRIC_REQUESTS, "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(METRIC_LATENCY, "HTTP request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter(METRIC_PREDICTIONS, "Series predicted, by whether the cache answered",
                                   ["cached"], registry=self.registry)
        self.batch_size = Histogram(METRIC_BATCH_SERIES, "Series per model call (micro-batches of concurrent requests)",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024), registry=self.registry)
        Info(METRIC_MODEL_INFO.removesuffix("_info"), "The served model and bundle",  # Info adds the suffix
             registry=self.registry).info(model_info)
        self.registry.register(_CacheCollector(cache_stats))
        self._children: dict[tuple[str, str, int], tuple] = {}  # labelled metrics, looked up once per label set

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                              self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)


class _CacheCollector:
    "Cache counters read from the cache's own stats at scrape time."

    def __init__(self, stats: Callable[[], dict[str, float]]):
        self.stats = stats

    COUNTERS = ((METRIC_CACHE_HITS, "hits"), (METRIC_CACHE_MISSES, "misses"), (METRIC_CACHE_ERRORS, "errors"))
    GAUGES = ((METRIC_CACHE_ENABLED, "enabled", "1 when a Redis cache is configured"),
              (METRIC_CACHE_BREAKER_OPEN, "breaker_open", "1 while the cache circuit breaker is open or half-open"))

    def collect(self) -> Iterator:
        s = self.stats()
        for metric, key in self.COUNTERS:
            c = CounterMetricFamily(metric, f"Prediction cache {key}")
            c.add_metric([], s.get(key, 0))
            yield c
        for metric, key, doc in self.GAUGES:
            g = GaugeMetricFamily(metric, doc)
            g.add_metric([], s.get(key, 0))
            yield g


class ObserveMiddleware:
    "Trace context, metrics and one JSON access-log line per HTTP request."

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), None)
        trace_id = parse_traceparent(incoming) or new_trace_id()
        header = f"00-{trace_id}-{os.urandom(8).hex()}-01".encode()
        token = TRACE_ID.set(trace_id)
        status = 500

        async def send_traced(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"traceparent", header)]
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"method": scope["method"], "path": scope["path"], "route": route,
                                           "status": status, "duration_ms": round(elapsed * 1e3, 3)})
            TRACE_ID.reset(token)
