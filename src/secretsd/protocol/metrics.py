"""/metrics in Prometheus' text format (prometheus-client).

Request counters and latency histograms are kept per worker; with several workers they live in
prometheus-client's multiprocess files (`multiprocess_dir`, a fresh directory the supervisor
creates), and any worker answering a scrape sums them all. Store figures (purge backlog,
replica states, service event counts) are read from the database at scrape time. Labels are
service, operation, status and error code: never a secret's name or anything a caller chose.

Access: open by default, like most exporters (nothing in it names a secret); with a token set,
a scrape must send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from secretsd.store.metrics_repository import StoreCounts

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StoreCollector(Collector):
    def __init__(self, counts: Callable[[], StoreCounts]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        found = self._counts()
        yield GaugeMetricFamily(
            "secretsd_secrets_scheduled_for_deletion",
            "Secrets in their recovery window.",
            value=found.scheduled_deletions,
        )
        yield GaugeMetricFamily(
            "secretsd_purge_backlog",
            "Secrets whose recovery window has ended and that are not yet purged.",
            value=found.purge_backlog,
        )
        replicas = GaugeMetricFamily(
            "secretsd_replicas", "Replica secrets by replication status.", labels=["status"]
        )
        for status, n in sorted(found.replicas_by_status.items()):
            replicas.add_metric([status], n)
        yield replicas
        events = CounterMetricFamily(
            "secretsd_service_events",
            "Service events recorded (RotationSucceeded, ReplicationFailed, ...).",
            labels=["source", "event"],
        )
        for (source, name), n in sorted(found.service_events.items()):
            events.add_metric([source, name], n)
        yield events


class Metrics:
    def __init__(
        self,
        counts: Callable[[], StoreCounts],
        *,
        token: str = "",
        multiprocess_dir: str = "",
    ) -> None:
        self._token = token.encode()
        self._multiprocess_dir = multiprocess_dir
        self._store = _StoreCollector(counts)
        own = None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        self._registry = own
        self.requests = Counter(
            "secretsd_requests",
            "API calls by service, operation, HTTP status and error code.",
            ["service", "operation", "status", "code"],
            registry=own,
        )
        self.latency = Histogram(
            "secretsd_request_duration_seconds",
            "API call latency by service and operation.",
            ["service", "operation"],
            buckets=_BUCKETS,
            registry=own,
        )
        self.audit_records = Counter(
            "secretsd_audit_records",
            "Audit records committed (result=written) or refused by the store (result=failed).",
            ["result"],
            registry=own,
        )
        self._children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
        if own is not None:
            own.register(self._store)

    def observe(self, service: str, operation: str, status: int, code: str, seconds: float) -> None:
        key = (service, operation, status, code)
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(service, operation, str(status), code),
                self.latency.labels(service, operation),
            )
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def audit_written(self, count: int, ok: bool) -> None:
        self.audit_records.labels("written" if ok else "failed").inc(count)

    def exposition(self) -> bytes:
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(self._store)
        return generate_latest(registry)

    async def serve(self, scope: Scope, send: Send) -> None:
        if self._token and not self._authorized(scope):
            await _send(send, 401, b"unauthorized\n", b"text/plain; charset=utf-8")
            return
        await _send(send, 200, self.exposition(), CONTENT_TYPE_LATEST.encode())

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, b"Bearer " + self._token)
        return False


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
