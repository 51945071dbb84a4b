"""Solve: let a solver regrow each body in a closed loop with test feedback.

- `solvers/`: the `Solver` seam and its backends, one file each, registered in `solvers.REGISTRY`;
- `prompt`: the messages or the file prefix a model is given;
- `extract`: a body out of a model's answer;
- `loop`: one chain of turns: propose, extract, verify, feed back, store.
"""
