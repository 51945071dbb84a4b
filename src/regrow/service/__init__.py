"""The reward over HTTP: `regrow serve` (FastAPI + uvicorn) and its client (docs/scaling.md)."""
