"""Go log/slog TextHandler output, the way Ollama's journal looks.

Ollama logs with ``slog.NewTextHandler(os.Stderr, AddSource: true)`` and
rewrites the source to the file's base name (``logutil/logutil.go``), so a
line reads::

    time=2026-11-25T10:00:00.123Z level=INFO source=routes.go:1951 msg="server config" env="map[...]"

The test double passes the Go ``file:line`` of the statement it imitates, so
journal greps written against real Ollama also match the double.
"""

from __future__ import annotations

import datetime as _dt
import sys
import threading
import time

from ollama_deploy.gocompat import duration, envconfig, strconv

from . import gorules

TRACE, DEBUG, INFO, WARN, ERROR = (
    envconfig.LEVEL_TRACE,
    envconfig.LEVEL_DEBUG,
    envconfig.LEVEL_INFO,
    envconfig.LEVEL_WARN,
    envconfig.LEVEL_ERROR,
)


def _local(ns: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ns // 10**9).astimezone()


def _offset(dt: _dt.datetime) -> str:
    off = dt.utcoffset() or _dt.timedelta(0)
    if not off:
        return "Z"  # Go's "Z07:00" prints Z for a zero offset
    secs = int(off.total_seconds())
    sign = "+" if secs >= 0 else "-"
    secs = abs(secs)
    return f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}"


def rfc3339_millis(ns: int | None = None) -> str:
    """slog's time attribute: RFC3339 with exactly three fraction digits."""
    ns = time.time_ns() if ns is None else ns
    dt = _local(ns)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9 // 10**6:03d}" + _offset(dt)


def rfc3339_nano(ns: int | None = None) -> str:
    """Go's time.Time JSON form (RFC3339Nano: trailing zeros trimmed)."""
    ns = time.time_ns() if ns is None else ns
    dt = _local(ns)
    frac = f"{ns % 10**9:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + _offset(dt)


def _needs_quoting(s: str) -> bool:
    if s == "":
        return True
    for ch in s:
        o = ord(ch)
        if o < 0x80:
            if ch != "\\" and (ch in ' ="' or o < 0x20 or o == 0x7F):
                return True
        elif ch.isspace() or not ch.isprintable():
            return True
    return False


def value(v) -> str:
    """Format one attribute value as slog's TextHandler does (%+v, quoted if needed)."""
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif v is None:
        s = "<nil>"
    elif isinstance(v, (list, tuple)):
        s = "[" + " ".join(_plain(x) for x in v) + "]"
    elif isinstance(v, dict):
        s = "map[" + " ".join(f"{k}:{_plain(v[k])}" for k in sorted(v)) + "]"
    else:
        s = str(v)
    return strconv.go_quote(s) if _needs_quoting(s) else s


def _plain(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_plain(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_plain(v[k])}" for k in sorted(v)) + "]"
    return str(v)


class Duration(int):
    """An int of nanoseconds that logs as Go's Duration.String()."""

    def __str__(self) -> str:
        return duration.go_format_duration(int(self))


class Logger:
    """Thread-safe stderr logger; every line is flushed at once (journald reads it live)."""

    def __init__(self, level: int = INFO, stream=None):
        self.level = level
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def enabled(self, level: int) -> bool:
        return level >= self.level

    def log(self, level: int, source: str, msg: str, *attrs) -> None:
        """attrs are alternating key, value pairs (like slog's variadic args)."""
        if not self.enabled(level):
            return
        name = "TRACE" if level == TRACE else gorules.slog_level_name(level)
        parts = [f"time={rfc3339_millis()}", f"level={name}", f"source={source}", f"msg={value(msg)}"]
        for i in range(0, len(attrs) - 1, 2):
            parts.append(f"{attrs[i]}={value(attrs[i + 1])}")
        self.raw(" ".join(parts))

    def trace(self, source, msg, *attrs):
        self.log(TRACE, source, msg, *attrs)

    def debug(self, source, msg, *attrs):
        self.log(DEBUG, source, msg, *attrs)

    def info(self, source, msg, *attrs):
        self.log(INFO, source, msg, *attrs)

    def warn(self, source, msg, *attrs):
        self.log(WARN, source, msg, *attrs)

    def error(self, source, msg, *attrs):
        self.log(ERROR, source, msg, *attrs)

    def raw(self, line: str) -> None:
        """Write a line verbatim (llama-server output that Ollama forwards)."""
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def gin(self, status: int, latency_ns: int, client_ip: str, method: str, path: str) -> None:
        """Gin's default access-log line (no colours: stderr is not a terminal)."""
        if latency_ns > duration.MINUTE:
            latency_ns -= latency_ns % duration.SECOND
        stamp = time.strftime("%Y/%m/%d - %H:%M:%S", time.localtime())
        lat = duration.go_format_duration(latency_ns)
        if client_ip.startswith("::ffff:"):  # gin reports IPv4-mapped peers as plain IPv4
            client_ip = client_ip[len("::ffff:"):]
        self.raw(f"[GIN] {stamp} | {status:3d} | {lat:>13} | {client_ip:>15} | {method:<7} {strconv.go_quote(path)}")
