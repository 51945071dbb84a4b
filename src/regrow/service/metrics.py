"""The service's Prometheus metrics (``GET /metrics``), in a registry of its own per app.

* ``regrow_requests_total{route, code}`` and ``regrow_request_seconds{route}``: every HTTP request.
* ``regrow_verdicts_total{status}``: candidates verified, by verdict status (solved, failed,
  malformed, timeout, crashed); ``regrow_flagged_total`` those with an integrity flag.
* ``regrow_replays_total``: items answered from the request ledger instead of verified again.
* ``regrow_item_errors_total{code}``: items answered with an error (unknown_task, conflict, ...).
* ``regrow_candidate_seconds``: wall time of one candidate's verification.
* ``regrow_inflight_candidates`` (admitted, not finished), ``regrow_queue_depth`` (of those, the
  ones beyond the warm workers' number), ``regrow_open_episodes``.
* ``regrow_rejected_total{reason}``: requests refused before any work (overloaded, too_large,
  unauthorized, shutting_down, deadline).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("regrow_requests", "HTTP requests by route and status code", ["route", "code"],
                                registry=r)
        self.request_seconds = Histogram("regrow_request_seconds", "HTTP request latency by route", ["route"],
                                         buckets=_LATENCY, registry=r)
        self.verdicts = Counter("regrow_verdicts", "Candidates verified, by verdict status", ["status"], registry=r)
        self.flagged = Counter("regrow_flagged", "Verified candidates with an integrity flag", registry=r)
        self.replays = Counter("regrow_replays", "Items answered from the request ledger", registry=r)
        self.item_errors = Counter("regrow_item_errors", "Items answered with an error", ["code"], registry=r)
        self.candidate_seconds = Histogram("regrow_candidate_seconds", "Verification wall time per candidate",
                                           buckets=_LATENCY, registry=r)
        self.inflight = Gauge("regrow_inflight_candidates", "Candidates admitted and not finished", registry=r)
        self.queue_depth = Gauge("regrow_queue_depth", "Admitted candidates waiting for a warm worker", registry=r)
        self.episodes = Gauge("regrow_open_episodes", "Open environment episodes", registry=r)
        self.rejected = Counter("regrow_rejected", "Requests refused before any work, by reason", ["reason"],
                                registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
