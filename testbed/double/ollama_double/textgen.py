"""Deterministic stand-in for model output.

The reply is derived only from the prompt, so tests and benches can predict
it; it says plainly that it comes from the ollama-deploy test double.
"""

from __future__ import annotations

import re
import zlib

_WORD = re.compile(r"[A-Za-z0-9']+")
_TOKEN = re.compile(r"\s*\S+")


def reply_tokens(prompt: str) -> list[str]:
    """Tokens of the reply: a short sentence echoing up to 12 prompt words."""
    words = [w.lower() for w in _WORD.findall(prompt)][:12] or ["nothing"]
    text = "Test double reply: you said " + " ".join(words) + "."
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Rough token count (one per word or punctuation run)."""
    return len(re.findall(r"\w+|[^\w\s]+", text))


def token_ids(text: str) -> list[int]:
    """Stand-in token ids for /api/generate's ``context`` (stable per token, like a vocabulary)."""
    return [zlib.crc32(t.encode()) % 32000 for t in re.findall(r"\w+|[^\w\s]+", text)]


def embedding(text: str, width: int) -> list[float]:
    """A unit-length stand-in vector of ``width`` values, the same for the same text (Ollama
    normalises /api/embed vectors)."""
    raw = [((zlib.crc32(f"{i}:{text}".encode()) % 2001) - 1000) / 1000 for i in range(width)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]
