"""Ollama's envconfig rules (``envconfig/config.go`` in v0.32.15): how the server reads each variable.

Example:
    ollama_bool("on")           # True: any value ParseBool rejects counts as true
"""

from __future__ import annotations

from ollama_deploy.gocompat.duration import MINUTE, SECOND, go_parse_duration
from ollama_deploy.gocompat.strconv import (
    MAX_INT64,
    _wrap_int64,
    go_parse_bool,
    go_parse_int,
    go_parse_uint,
    go_trim_space,
)


def ollama_var(raw: str | None) -> str:
    """envconfig.Var: TrimSpace, then trim any leading/trailing ' and ".

    Spaces inside the quotes survive (Go trims quotes after spaces, once).

    >>> ollama_var('  "5m" ')
    '5m'
    >>> ollama_var("' 1 '")
    ' 1 '
    """
    if raw is None:
        return ""
    return go_trim_space(raw).strip("\"'")


def ollama_bool(raw: str | None, default: bool = False) -> bool:
    """envconfig.Bool / BoolWithDefault.

    Empty (after ``ollama_var``) gives ``default``; any value ParseBool rejects
    (``on``, ``yes``, ``enabled``) counts as **true**.

    >>> ollama_bool("on"), ollama_bool("0"), ollama_bool("", True), ollama_bool(None)
    (True, False, True, False)
    """
    s = ollama_var(raw)
    if s == "":
        return default
    try:
        return go_parse_bool(s)
    except ValueError:
        return True


def ollama_uint(raw: str | None, default: int) -> int:
    """envconfig.Uint / Uint64 value: ParseUint(s, 10, 64), invalid -> default.

    (Ollama also logs ``invalid environment variable, using default``.)

    >>> ollama_uint(" 4 ", 1), ollama_uint("-1", 1), ollama_uint("", 512)
    (4, 1, 512)
    """
    s = ollama_var(raw)
    if s == "":
        return default
    try:
        return go_parse_uint(s)
    except ValueError:
        return default


def _duration_or_seconds(raw: str | None, default: int) -> int:
    """The envconfig pattern shared by OLLAMA_KEEP_ALIVE and OLLAMA_LOAD_TIMEOUT: a Go duration,
    else a bare integer of seconds, else (silently) the default. Nanoseconds."""
    s = ollama_var(raw)
    if s == "":
        return default
    try:
        return go_parse_duration(s)
    except ValueError:
        try:
            return _wrap_int64(go_parse_int(s) * SECOND)
        except ValueError:
            return default


def parse_keep_alive(raw: str | None) -> int:
    """envconfig.KeepAlive in nanoseconds.

    ParseDuration first, else a bare integer of seconds, else (silently) 5m.
    Any negative result means "forever" (MaxInt64).

    >>> m = 60 * 10**9
    >>> [parse_keep_alive(v) // m for v in ("5m", "300", "0", "1.5", "abc")]
    [5, 5, 0, 5, 5]
    >>> parse_keep_alive("-1") == parse_keep_alive("-1s") == MAX_INT64
    True
    """
    keep_alive = _duration_or_seconds(raw, 5 * MINUTE)
    return MAX_INT64 if keep_alive < 0 else keep_alive


def parse_load_timeout(raw: str | None) -> int:
    """envconfig.LoadTimeout in nanoseconds: like keep-alive, but <=0 is forever.

    >>> parse_load_timeout("0") == MAX_INT64, parse_load_timeout("10m") // 10**9
    (True, 600)
    """
    timeout = _duration_or_seconds(raw, 5 * MINUTE)
    return MAX_INT64 if timeout <= 0 else timeout


LEVEL_TRACE = -8
LEVEL_DEBUG = -4
LEVEL_INFO = 0
LEVEL_WARN = 4
LEVEL_ERROR = 8


def ollama_log_level(raw: str | None) -> int:
    """envconfig.LogLevel: true -> DEBUG; else integer i -> level i*-4; else INFO.

    >>> ollama_log_level("1"), ollama_log_level("2"), ollama_log_level("on"), ollama_log_level("")
    (-4, -8, 0, 0)
    """
    s = ollama_var(raw)
    level = LEVEL_INFO
    if s != "":
        try:
            b = go_parse_bool(s)
        except ValueError:
            b = False
        if b:
            level = LEVEL_DEBUG
        else:
            try:
                i = go_parse_int(s)
            except ValueError:
                i = 0
            if i != 0:
                level = _wrap_int64(i * -4)
    return level
