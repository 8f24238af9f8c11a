"""Model parameters as Ollama v0.32.15 stores and shows them (``api.FormatParams``, ``%#v`` in /api/show).

Example:
    format_params({"num_ctx": ["8192"]})   # {"num_ctx": 8192}
"""

from __future__ import annotations

import struct
from typing import Any

from ollama_deploy.gocompat.strconv import go_parse_bool, go_parse_int

OPTION_KINDS = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "*int", "use_mmap": "*bool",
    "num_thread": "int", "draft_num_predict": "int",
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int", "top_p": "float32",
    "min_p": "float32", "typical_p": "float32", "repeat_last_n": "int", "temperature": "float32",
    "repeat_penalty": "float32", "presence_penalty": "float32", "frequency_penalty": "float32",
    "stop": "[]string",
}


def _go_float32(s: str) -> float:
    """strconv.ParseFloat(s, 32) for the common decimal forms."""
    t = s.strip("+")
    if t.lower() in ("inf", "infinity", "nan") or s.lower() in ("+inf", "-inf", "+infinity", "-infinity"):
        return float(s)
    if not t or any(c not in "0123456789.eE+-_" for c in t) or "_" in t:
        raise ValueError(s)
    v = float(s)
    if abs(v) > 3.4028234663852886e38:
        raise ValueError(s)
    return struct.unpack("<f", struct.pack("<f", v))[0]


def format_params(params: dict) -> dict[str, Any]:
    """api.FormatParams: Modelfile PARAMETER values (lists of strings) -> typed values.

    Unknown names are rejected here, by the *client* (``ollama create``), with
    "unknown parameter 'x'"; the server's /api/create stores whatever it gets.

    >>> format_params({"num_ctx": ["8192"], "stop": ["<|eot|>", "END"], "temperature": ["0.5"]})
    {'num_ctx': 8192, 'stop': ['<|eot|>', 'END'], 'temperature': 0.5}
    >>> format_params({"num_threads": ["8"]})
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'num_threads'
    """
    out: dict[str, Any] = {}
    for key, vals in params.items():
        kind = OPTION_KINDS.get(key)
        if kind is None:
            raise ValueError(f"unknown parameter '{key}'")
        shown = "[" + " ".join(vals) + "]"
        if kind == "float32":
            try:
                out[key] = _go_float32(vals[0])
            except ValueError:
                raise ValueError(f"invalid float value {shown}") from None
        elif kind in ("int", "*int"):
            try:
                out[key] = go_parse_int(vals[0])
            except ValueError:
                raise ValueError(f"invalid int value {shown}") from None
        elif kind == "*bool":
            try:
                out[key] = go_parse_bool(vals[0])
            except ValueError:
                raise ValueError(f"invalid bool value {shown}") from None
        else:
            out[key] = list(vals)
    return out


def shown_params(params: dict) -> dict[str, Any]:
    """/api/show's `parameters` ({name: [values]}) -> the typed values format_params gives.

    Ollama prints each stored option with Go's %#v (server/routes.go, ShowHandler) after JSON
    decoding, so every number is a float64: num_ctx 1000000 reads `1e+06`, 1048576 `1.048576e+06`,
    which api.FormatParams's ParseInt would refuse. Integral numbers are integers again here.

    >>> shown_params({"num_ctx": ["1.048576e+06"], "num_thread": ["3"], "temperature": ["0.5"]})
    {'num_ctx': 1048576, 'num_thread': 3, 'temperature': 0.5}
    """
    out: dict[str, Any] = {}
    for key, vals in params.items():
        kind = OPTION_KINDS.get(key)
        if kind in ("int", "*int"):
            number = float(vals[0])
            out[key] = int(number) if number.is_integer() else number
        elif kind == "float32":
            out[key] = _go_float32(vals[0])
        elif kind == "*bool":
            out[key] = go_parse_bool(vals[0])
        else:
            out[key] = list(vals)
    return out
