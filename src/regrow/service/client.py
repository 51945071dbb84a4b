"""A small client of `regrow serve`: the same verdicts as an in-process `Reward`, over HTTP.

    from regrow.service.client import RemoteReward
    remote = RemoteReward("http://127.0.0.1:8000", api_key=None)
    verdict = remote.score("calc.ops:add", completion_text)
    verdicts = remote.score_batch([{"task_id": ..., "completion": ...}, ...])

Every item gets a ``request_id`` (a fresh one when the caller gives none), so a request the
server did not answer (connection lost, server restarted, 429, 503, 504) is sent again with the
same ids: the server answers an id it already verified from its ledger, so each completion is
verified once and every caller gets its verdict once. Retries wait as ``Retry-After`` says, up
to ``retry_for`` seconds in all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import httpx

from regrow.core.verdict import Verdict
from regrow.errors import ConfigError, RegrowError
from regrow.service.wire import verdict_of

__all__ = ["RemoteReward", "RemoteError"]

RETRY_STATUS = frozenset({429, 502, 503, 504})


class RemoteError(RegrowError):
    """The reward service refused a request in a way retrying will not fix, or stayed unreachable."""


class RemoteReward:
    def __init__(self, url: str, api_key: str | None = None, *, spec=None, timeout: float = 600.0,
                 retry_for: float = 300.0, batch: int = 256):
        from regrow.reward import RewardSpec

        self.url = url.rstrip("/")
        self.spec = spec or RewardSpec()
        self.retry_for = retry_for
        self.batch = max(1, batch)
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0))
        self.retries = 0  # requests sent again (for logs and tests)

    # ------------------------------------------------------------------------------ calls

    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        give_up = time.monotonic() + self.retry_for
        wait = 0.2
        while True:
            try:
                response = self._http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if time.monotonic() + wait > give_up:
                    raise RemoteError(f"the reward service at {self.url} is unreachable: {exc}") from exc
                reason_wait = wait
            else:
                if response.status_code not in RETRY_STATUS:
                    if response.status_code >= 400:
                        raise RemoteError(f"the reward service refused {method} {path}: "
                                          f"{response.status_code} {_message(response)}")
                    return response
                if time.monotonic() + wait > give_up:
                    raise RemoteError(f"the reward service kept answering {response.status_code}: {_message(response)}")
                reason_wait = _retry_after(response, wait)
            self.retries += 1
            time.sleep(min(reason_wait, max(0.0, give_up - time.monotonic())))
            wait = min(wait * 2, 5.0)

    def results(self, items: Iterable) -> list[dict]:
        """The server's result dicts (`ScoreResult`), one per item, in order. An item is a dict
        ``{task_id, completion, request_id?, source?}`` or a ``(task_id, completion)`` pair."""
        body = [_item(i) for i in items]
        out: list[dict] = []
        for start in range(0, len(body), self.batch):
            chunk = body[start:start + self.batch]
            out.extend(self._request("POST", "/v1/score", json=chunk).json()["results"])
        return out

    def score_batch(self, items: Iterable) -> list[Verdict | None]:
        """One `Verdict` per item (None for a task the server does not have)."""
        verdicts: list[Verdict | None] = []
        for res in self.results(items):
            if res.get("error") is not None:
                if res["error"]["code"] == "unknown_task":
                    verdicts.append(None)
                    continue
                raise RemoteError(f"{res['task_id']}: {res['error']['message']}")
            verdicts.append(verdict_of(res["verdict"]))
        return verdicts

    def score(self, task_id: str, completion: str, request_id: str | None = None,
              source: str | None = None) -> Verdict:
        """The verdict of ``completion`` as the body of ``task_id`` (as `Reward.score`)."""
        item = {"task_id": task_id, "completion": completion, "request_id": request_id, "source": source}
        [res] = self.results([item])
        if res.get("error") is not None:
            err = res["error"]
            raise (ConfigError if err["code"] == "unknown_task" else RemoteError)(err["message"])
        return verdict_of(res["verdict"])

    def value(self, verdict: Verdict) -> float:
        """The trainer's number for ``verdict`` under this client's `RewardSpec`."""
        return self.spec.value(verdict)

    def tasks(self, **filters) -> list[dict]:
        """GET /v1/tasks with ``source``, ``module``, ``min_strength``, ``max_strength``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._request("GET", "/v1/tasks", params=params).json()["tasks"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RemoteReward":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _item(item) -> dict:
    if isinstance(item, dict):
        out = {"task_id": str(item["task_id"]), "completion": str(item.get("completion") or "")}
        for key in ("request_id", "source"):
            if item.get(key) is not None:
                out[key] = str(item[key])
    else:
        task_id, completion = item
        out = {"task_id": str(task_id), "completion": str(completion)}
    out.setdefault("request_id", uuid.uuid4().hex)
    return out


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:  # not the service's error shape (a proxy's page): show its start
        return response.text[:200]


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.05, min(float(value), 30.0))
    except ValueError:
        return default
