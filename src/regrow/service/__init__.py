"""The reward over HTTP: `regrow serve` (FastAPI + uvicorn) and its client (docs/service.md; on a Ray
cluster: docs/scaling.md).

* `app` — `RewardService` (the state: catalog, scorer, request ledger, admission, episodes,
  metrics), `create_app(service)` (the FastAPI routes), `build_service` and `serve` (what
  `regrow serve` runs); docs/service.md describes every endpoint.
* `scorer` — the `Scorer` seam (``score_batch(items) -> verdicts``), `LocalScorer` over the
  sources' `Reward`s, and the `Catalog` of their valid tasks.
* `wire` — the request and response bodies (the published OpenAPI schema) and `Verdict` as JSON.
* `limits` — `ServeConfig`, API keys, in-flight admission, the body-size limit.
* `sessions` — the episodes of the environment endpoints (OpenEnv shape).
* `metrics` — the Prometheus metrics of ``GET /metrics``.
* `client` — `RemoteReward(url, api_key)`: ``score`` / ``score_batch`` over HTTP, retried with
  the same request ids (used by regrow.integrations when a URL is configured).

FastAPI, uvicorn, httpx and prometheus_client are imported only here (the `serve` extra).
"""
