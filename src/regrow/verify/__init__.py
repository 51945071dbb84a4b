"""Verify a candidate: run its covering tests where it cannot lie, and judge in the parent.

- `verifier`: `Verifier.verify(task, body) -> Verdict`, the checks and the verdict;
- `sandbox`: the `Sandbox` seam and `LocalSandbox` (a fresh pytest per job), used by grok too;
- `engine`: the warm engine (a worker per source, a forked child per candidate);
- `equivalence`: replay of recorded calls on the candidate, compared in the parent;
- `hackscan`: the static scan for reward hacks;
- `_plugin/`: what runs inside the target's interpreter (pytest plugin, recorder, canonical
  form, the trusted worker `regrow_worker` and its sandboxed child `regrow_child`).
"""

from regrow.verify.verifier import Verifier, VerifyConfig

__all__ = ["Verifier", "VerifyConfig"]
