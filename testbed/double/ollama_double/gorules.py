"""Go rules only the double needs: how Ollama reads a request's keep_alive, and slog's level names.

The deploy never parses requests or prints server logs, so these live here, not in
``ollama_deploy.gocompat``.
"""

from __future__ import annotations

from ollama_deploy.gocompat.duration import SECOND, go_parse_duration
from ollama_deploy.gocompat.envconfig import LEVEL_DEBUG, LEVEL_ERROR, LEVEL_INFO, LEVEL_WARN
from ollama_deploy.gocompat.strconv import MAX_INT64, MIN_INT64


def parse_request_keep_alive(value):
    """api.Duration.UnmarshalJSON for a request's ``keep_alive``, in ns.

    ``None`` (JSON null / absent) returns ``None``: the server default applies.
    A JSON number is seconds (floats allowed); a string goes through
    ParseDuration only, so the string "300" is an error.  Negative -> forever.

    >>> parse_request_keep_alive(300) // 10**9, parse_request_keep_alive("10m") // 10**9
    (300, 600)
    >>> parse_request_keep_alive(-1) == MAX_INT64
    True
    >>> parse_request_keep_alive("300")
    Traceback (most recent call last):
    ...
    ValueError: time: missing unit in duration "300"
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("Unsupported type: 'bool'")
    if isinstance(value, (int, float)):
        if value < 0:
            return MAX_INT64
        ns = value * float(SECOND)
        # Go's float64->int64 conversion yields MinInt64 when out of range (amd64).
        if ns != ns or ns >= 2.0**63:
            return MIN_INT64
        return int(ns)
    if isinstance(value, str):
        d = go_parse_duration(value)
        return MAX_INT64 if d < 0 else d
    kind = {dict: "map[string]interface {}", list: "[]interface {}"}.get(type(value), type(value).__name__)
    raise ValueError(f"Unsupported type: '{kind}'")


def slog_level_name(level: int) -> str:
    """slog.Level.String (what the ``server config`` line prints for OLLAMA_DEBUG).

    >>> slog_level_name(0), slog_level_name(-4), slog_level_name(-8), slog_level_name(6)
    ('INFO', 'DEBUG', 'DEBUG-4', 'WARN+2')
    """
    def fmt(base: str, val: int) -> str:
        return base if val == 0 else f"{base}{val:+d}"

    if level < LEVEL_INFO:
        return fmt("DEBUG", level - LEVEL_DEBUG)
    if level < LEVEL_WARN:
        return fmt("INFO", level - LEVEL_INFO)
    if level < LEVEL_ERROR:
        return fmt("WARN", level - LEVEL_WARN)
    return fmt("ERROR", level - LEVEL_ERROR)
