"""OpenAISolver against a real HTTP server speaking the OpenAI protocol, via the official client."""

from __future__ import annotations

import json
import subprocess
import sys
import socket
import threading
import time

import pytest

from openai_stub_server import OpenAIStub, Reply
from regrow.errors import SolverError
from regrow.solve.solvers.base import SolveRequest, Turn
from regrow.solve.solvers.openai_backend import OpenAISolver
from regrow.solve.solvers.options import Prices, SolverOptions
from test_extract import ADD, COUNT

FAST = {"backoff": 0.01, "backoff_max": 0.05}


def solver(server: OpenAIStub, **options) -> OpenAISolver:
    return OpenAISolver(model="coder-7b", base_url=server.base_url, options=SolverOptions(**{**FAST, **options}))


def test_plain_chat_sends_the_task_and_reports_usage():
    with OpenAIStub([Reply(texts=("```python\nreturn (a + b) * scale\n```",), prompt_tokens=321)]) as server:
        [completion] = solver(server, temperature=0.0, max_tokens=99).propose(SolveRequest(task=ADD, seed=7))
    assert completion.text == "```python\nreturn (a + b) * scale\n```"
    assert completion.tokens_in == 321 and completion.tokens_out == 8  # the stub counts words
    assert completion.latency > 0 and completion.cost == 0.0
    assert completion.meta["finish_reason"] == "stop" and completion.meta["tries"] == 1
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    body = request.body
    assert body["model"] == "coder-7b" and body["temperature"] == 0.0 and body["max_tokens"] == 99
    assert body["seed"] == 7 and body["n"] == 1 and "stream" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert ADD.hollowed_file.splitlines()[8] in body["messages"][1]["content"]  # the def line


def test_streaming_reassembles_the_chunks_and_reads_usage_from_the_last_one():
    answer = "```python\ndef add(a, b=1, *, scale=1):\n    return (a + b) * scale\n```"
    with OpenAIStub([Reply(texts=(answer,), prompt_tokens=50)]) as server:
        [completion] = solver(server, stream=True).propose(SolveRequest(task=ADD))
    assert completion.text == answer
    assert completion.tokens_in == 50 and completion.tokens_out == len(answer.split())
    assert completion.meta["stream"] is True and completion.meta["ttft"] > 0
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_counts_tokens_with_the_named_tokenizer():
    with OpenAIStub([Reply(texts=("return a + b",), usage=False)]) as server:
        [completion] = solver(server, stream=True).propose(SolveRequest(task=ADD))
    assert completion.meta["usage_estimated"] is True
    assert completion.meta["tokenizer"]
    assert completion.tokens_out > 0 and completion.tokens_in > 0


def test_n_completions_come_from_one_request_when_the_server_supports_n():
    with OpenAIStub([Reply(texts=("return a", "return b + b", "return 3"), prompt_tokens=100)]) as server:
        completions = solver(server, prices=Prices(input=1.0, output=2.0)).propose(
            SolveRequest(task=ADD, n=3, seed=10, sample=2))
    assert [c.text for c in completions] == ["return a", "return b + b", "return 3"]
    assert len(server.requests) == 1 and server.requests[0].body["n"] == 3
    assert sum(c.tokens_out for c in completions) == 8  # the response's total, shared out
    assert [c.meta["seed"] for c in completions] == [12, 13, 14]
    # The prompt was billed once: its cost is split between the three choices.
    assert sum(c.cost for c in completions) == pytest.approx((100 * 1.0 + 8 * 2.0) / 1e6)


def test_a_server_that_ignores_n_gets_sequential_requests_with_their_own_seeds():
    with OpenAIStub(lambda body: Reply(texts=(f"return {body['seed']}",), choices=1)) as server:
        s = solver(server)
        first = s.propose(SolveRequest(task=ADD, n=3, seed=100))
        assert [c.text for c in first] == ["return 100", "return 101", "return 102"]
        assert [r.body["n"] for r in server.requests] == [3, 1, 1]
        second = s.propose(SolveRequest(task=ADD, n=2, seed=0))  # learnt: no more n > 1
        assert [c.text for c in second] == ["return 0", "return 1"]
        assert [r.body["n"] for r in server.requests[3:]] == [1, 1]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_retried_with_backoff(status):
    script = [Reply(status=status), Reply(status=status), Reply(texts=("return 1",))]
    with OpenAIStub(script) as server:
        [completion] = solver(server, max_retries=3).propose(SolveRequest(task=ADD))
    assert completion.text == "return 1" and completion.meta["tries"] == 3
    assert len(server.requests) == 3


def test_retry_after_is_honoured_up_to_backoff_max():
    script = [Reply(status=429, headers={"Retry-After": "0.4"}), Reply(texts=("return 1",))]
    with OpenAIStub(script) as server:
        started = time.perf_counter()
        solver(server, backoff_max=1.0).propose(SolveRequest(task=ADD))
        waited = server.requests[1].at - server.requests[0].at
    assert 0.4 <= waited < 1.5 and time.perf_counter() - started < 5


def test_a_timeout_is_retried():
    with OpenAIStub([Reply(delay=2.0), Reply(texts=("return 2",))]) as server:
        [completion] = solver(server, timeout=0.5).propose(SolveRequest(task=ADD))
    assert completion.text == "return 2" and completion.meta["tries"] == 2


def test_retries_are_bounded_and_end_in_a_solver_error():
    with OpenAIStub(lambda body: Reply(status=429, error="slow down")) as server:
        with pytest.raises(SolverError, match=r"did not answer \(3 tries\).*slow down"):
            solver(server, max_retries=2).propose(SolveRequest(task=ADD))
        assert len(server.requests) == 3


def test_a_dead_server_fails_quickly_with_the_url_in_the_message():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    dead = OpenAISolver(model="m", base_url=url, options=SolverOptions(max_retries=2, **FAST))
    started = time.perf_counter()
    with pytest.raises(SolverError) as caught:
        dead.propose(SolveRequest(task=ADD))
    assert time.perf_counter() - started < 3
    assert url in str(caught.value) and "3 tries" in str(caught.value)


def test_a_refusal_is_not_retried():
    with OpenAIStub([Reply(status=401, error="bad key"), Reply()]) as server:
        with pytest.raises(SolverError, match=r"refused the request \(401\): bad key"):
            solver(server).propose(SolveRequest(task=ADD))
        assert len(server.requests) == 1


def test_the_api_key_comes_from_the_named_variable_and_is_never_kept(monkeypatch):
    secret = "sk-test-5f1d2c3b4a"
    monkeypatch.setenv("REGROW_TEST_KEY", secret)
    with OpenAIStub([Reply(texts=("return 1",))]) as server:
        s = solver(server, api_key_env="REGROW_TEST_KEY")
        completions = s.propose(SolveRequest(task=ADD))
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    visible = [repr(s), str(vars(s).get("options")), repr(s.options), repr(completions),
               json.dumps([c.meta for c in completions]), s.name, s.identity]
    assert not any(secret in text for text in visible)


def test_without_the_key_variable_a_placeholder_key_is_sent(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAIStub([Reply()]) as server:
        solver(server).propose(SolveRequest(task=ADD))
    assert server.requests[0].headers["authorization"] == "Bearer EMPTY"


def test_completion_mode_continues_the_file_and_cuts_the_body_where_the_function_ends():
    continuation = "    total = a + b\n    return total * scale\n\n\ndef unrelated():\n    pass\n"
    with OpenAIStub([Reply(texts=(continuation,))]) as server:
        [completion] = solver(server, mode="completion").propose(SolveRequest(task=ADD))
    request = server.requests[0]
    assert request.path == "/v1/completions"
    assert request.body["prompt"].rstrip().endswith('"""Return (a + b) * scale."""')
    assert request.body["stop"] == ["\ndef ", "\nclass ", "\n@", "\nif __name__"]
    assert completion.text == continuation
    assert completion.body == "total = a + b\nreturn total * scale"


def test_completion_mode_for_a_method_stops_at_the_next_method():
    with OpenAIStub([Reply(texts=("        return self.seen\n",))]) as server:
        [completion] = solver(server, mode="completion", stream=True).propose(SolveRequest(task=COUNT))
    assert server.requests[0].body["stop"][:2] == ["\n    def ", "\n    @"]
    assert completion.body == "return self.seen"


def test_messages_given_in_the_request_are_sent_as_they_are():
    messages = ({"role": "user", "content": "write it"},)
    with OpenAIStub([Reply()]) as server:
        solver(server).propose(SolveRequest(task=ADD, messages=messages))
    assert server.requests[0].body["messages"] == [{"role": "user", "content": "write it"}]


def test_later_turns_carry_the_earlier_answers_and_their_feedback():
    history = (Turn("```python\nreturn a\n```", "FAILED test_add: assert 2 == 3"),)
    with OpenAIStub([Reply()]) as server:
        solver(server).propose(SolveRequest(task=ADD, turn=1, history=history))
    messages = server.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "```python\nreturn a\n```"
    assert "FAILED test_add: assert 2 == 3" in messages[3]["content"]


def test_concurrent_sequential_requests_are_bounded_by_concurrency():
    lock = threading.Lock()
    in_flight, peak = [0], [0]

    def script(body):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return Reply(choices=1)

    with OpenAIStub(script) as server:
        completions = solver(server, concurrency=2).propose(SolveRequest(task=ADD, n=5))
    assert len(completions) == 5 and len(server.requests) == 5
    assert peak[0] == 2


def test_the_cache_key_changes_with_the_sampling_options():
    a = OpenAISolver(model="m", base_url="http://127.0.0.1:1/v1", options=SolverOptions(temperature=0.0))
    b = OpenAISolver(model="m", base_url="http://127.0.0.1:1/v1", options=SolverOptions(temperature=0.7))
    assert a.name == b.name and a.identity != b.identity


def test_the_solver_registry_builds_it_from_a_spec():
    from regrow.solve.solvers import make_solver

    s = make_solver("openai:qwen@http://127.0.0.1:8000/v1", SolverOptions(max_retries=1))
    assert isinstance(s, OpenAISolver)
    assert s.model == "qwen" and s.base_url == "http://127.0.0.1:8000/v1" and s.options.max_retries == 1


def test_without_the_local_extra_prompts_are_counted_with_the_approximate_tokenizer():
    """The docstring promised a fallback; an unguarded `import llama_cpp` broke it."""
    code = ("import sys; sys.modules['llama_cpp'] = None\n"  # makes `import llama_cpp` raise ImportError
            "from regrow.solve.solvers.openai_backend import OpenAISolver\n"
            "s = OpenAISolver(model='m', base_url='http://127.0.0.1:9/v1')\n"
            "print(type(s.tokenizer).__name__, s.tokenizer.count('def f(x):\\n    return x'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    name, count = done.stdout.split()
    assert name == "ApproxTokenizer" and int(count) > 0
