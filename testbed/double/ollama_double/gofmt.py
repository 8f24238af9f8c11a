"""Go's text formats that the double's output must match byte for byte.

go_json is encoding/json's Encoder; go_q, go_v and go_sharp_v are fmt's %q,
%v and %#v of JSON-decoded values (go_g is strconv's 'g' format under them).
They sit apart from the store and the HTTP handlers because both write them:
manifests and every API reply use go_json, /api/show the fmt verbs.
"""

from __future__ import annotations

import json
from decimal import Decimal

from ollama_deploy.gocompat import strconv


def _go_numbers(obj):
    """Go prints whole float64 values without ".0" (500000, not 500000.0)."""
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 1e21:
        return int(obj)
    if isinstance(obj, dict):
        return {k: _go_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_go_numbers(v) for v in obj]
    return obj


def go_json(obj, sort_keys: bool = False) -> bytes:
    """json.NewEncoder(w).Encode(obj): compact, HTML-escaped, trailing newline.
    ``sort_keys``: obj is a Go map (encoding/json sorts map keys; struct fields keep their order)."""
    s = json.dumps(_go_numbers(obj), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (s + "\n").encode()


def go_q(s: str) -> str:
    """Go's %q of a string (printable runes kept, quotes and backslashes escaped)."""
    return json.dumps(s, ensure_ascii=False)


def go_g(x: float) -> str:
    """strconv.FormatFloat(x, 'g', -1, 64), which %v and %#v print for a float64:
    shortest digits, exponent form when exp < -4 or exp >= 6 (1000000 -> 1e+06)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if str(x).startswith("-") else "0"
    sign, digits, exp10 = Decimal(repr(x)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    dp = len(ds) + exp10  # position of the decimal point
    pre = "-" if sign else ""
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{pre}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{pre}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return pre + ds + "0" * (dp - len(ds))
    return f"{pre}{ds[:dp]}.{ds[dp:]}"


def go_v(v) -> str:
    """fmt %v of a JSON-decoded value (numbers are float64 in Go's map[string]any)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return go_g(float(v))
    return str(v)


def go_sharp_v(v) -> str:
    """fmt %#v of a JSON-decoded value: strings quoted, numbers as float64 (%g, 1e+06)."""
    if isinstance(v, str):
        return strconv.go_quote(v)
    return go_v(v)
