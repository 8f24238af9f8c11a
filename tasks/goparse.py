"""Parse values exactly as Ollama (Go) does.

Pure, standard-library-only helpers shared by the deploy's validation and by
the ollama-deploy *test double* (which ships a copy of this file as
``lib/ollama/test-double/goparse.py``).

Every function mirrors one Go routine that Ollama v0.32.15 uses when it reads
its environment (``envconfig/config.go``) or a request (``api/types.go``):

* ``strconv.ParseBool`` / ``ParseUint`` / ``ParseInt``  -> ``go_parse_bool`` ...
* ``time.ParseDuration`` / ``Duration.String``         -> ``go_parse_duration``,
  ``go_format_duration``
* ``envconfig.Var`` / ``Bool`` / ``BoolWithDefault``     -> ``ollama_var``,
  ``ollama_bool``
* ``envconfig.KeepAlive`` / ``LoadTimeout``              -> ``parse_keep_alive``,
  ``parse_load_timeout``
* ``api.Duration.UnmarshalJSON`` (request keep_alive)    -> ``parse_request_keep_alive``
* ``envconfig.LogLevel`` + ``slog.Level.String``         -> ``ollama_log_level``,
  ``slog_level_name``
* ``envconfig.Host`` (+ ``net.SplitHostPort``, ``net.ParseIP``) -> ``parse_ollama_host``,
  ``ollama_host``

Error messages reproduce Go's wording, because deploy checks may show them to
an operator next to the value that Ollama would reject.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)
MAX_UINT64 = (1 << 64) - 1

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

# unicode.IsSpace: Go's TrimSpace set.  Python's str.strip() also strips
# U+001C..U+001F, which Go keeps, so the set is spelled out.
_GO_SPACE = "\t\n\v\f\r \u0085\u00a0\u1680" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
) + "\u2028\u2029\u202f\u205f\u3000"


def go_trim_space(s: str) -> str:
    """strings.TrimSpace: strip Go's Unicode white space from both ends.

    >>> go_trim_space("  5m\\n")
    '5m'
    """
    return s.strip(_GO_SPACE)


def go_quote(s: str) -> str:
    """strconv.Quote (enough of it for error messages).

    >>> go_quote('a"b')
    '"a\\\\"b"'
    """
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o >= 0x80 and not ch.isprintable():
            out.append("\\u%04x" % o if o <= 0xFFFF else "\\U%08x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _time_quote(s: str) -> str:
    """time.quote: the quoting used inside time.ParseDuration errors."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ord(ch) < 0x20:
            out.extend("\\x%02x" % b for b in ch.encode("utf-8", "surrogatepass"))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------
# strconv


def go_parse_bool(s: str) -> bool:
    """strconv.ParseBool: only the twelve spellings Go accepts.

    >>> go_parse_bool("T"), go_parse_bool("false")
    (True, False)
    >>> go_parse_bool("on")
    Traceback (most recent call last):
    ...
    ValueError: strconv.ParseBool: parsing "on": invalid syntax
    """
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(s)}: invalid syntax")


def _ascii_digits(s: str) -> bool:
    return s != "" and all("0" <= c <= "9" for c in s)


def go_parse_uint(s: str, bit_size: int = 64) -> int:
    """strconv.ParseUint(s, 10, bit_size): ASCII digits only, no sign, no '_'.

    >>> go_parse_uint("18446744073709551615")
    18446744073709551615
    >>> go_parse_uint("+1")
    Traceback (most recent call last):
    ...
    ValueError: strconv.ParseUint: parsing "+1": invalid syntax
    """
    if not _ascii_digits(s):
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(s)}: invalid syntax")
    n = int(s)
    if n > (1 << bit_size) - 1:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(s)}: value out of range")
    return n


def go_parse_int(s: str, bit_size: int = 64) -> int:
    """strconv.ParseInt(s, 10, bit_size): optional '+'/'-' then ASCII digits.

    >>> go_parse_int("-1"), go_parse_int("+300")
    (-1, 300)
    """
    body = s[1:] if s[:1] in ("+", "-") else s
    if not _ascii_digits(body):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: invalid syntax")
    n = int(body)
    if s[:1] == "-":
        n = -n
    if n > (1 << (bit_size - 1)) - 1 or n < -(1 << (bit_size - 1)):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return n


# --------------------------------------------------------------------------
# time.Duration

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # U+00B5 micro sign
    "\u03bcs": MICROSECOND,  # U+03BC Greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


def go_parse_duration(s: str) -> int:
    """time.ParseDuration: returns nanoseconds (an int64 value).

    Grammar ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+``; a bare "0" is allowed.

    >>> go_parse_duration("1h30m") == 90 * 60 * 10**9
    True
    >>> go_parse_duration("1.5s"), go_parse_duration("-0")
    (1500000000, 0)
    >>> go_parse_duration("300")
    Traceback (most recent call last):
    ...
    ValueError: time: missing unit in duration "300"
    """
    orig = s
    invalid = ValueError("time: invalid duration " + _time_quote(orig))
    d = 0
    neg = False
    if s != "" and s[0] in "-+":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise invalid
    while s != "":
        v = f = 0
        scale = 1.0
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        # leadingInt: [0-9]*, overflow is an error
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            if v > (1 << 63) // 10:
                raise invalid
            v = v * 10 + (ord(s[i]) - 48)
            if v > 1 << 63:
                raise invalid
            i += 1
        pre = i > 0
        s = s[i:]
        post = False
        if s != "" and s[0] == ".":
            s = s[1:]
            # leadingFraction: digits past int64 precision are dropped
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    if f > MAX_INT64 // 10:
                        overflow = True
                    else:
                        y = f * 10 + (ord(s[i]) - 48)
                        if y > 1 << 63:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + _time_quote(orig))
        u, s = s[:i], s[i:]
        unit = _UNITS.get(u)
        if unit is None:
            raise ValueError(
                "time: unknown unit " + _time_quote(u) + " in duration " + _time_quote(orig)
            )
        if v > (1 << 63) // unit:
            raise invalid
        v *= unit
        if f > 0:
            # Go converts through float64 here too (nanosecond accurate for h).
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise invalid
        d += v
        if d > 1 << 63:
            raise invalid
    if neg:
        return -d
    if d > MAX_INT64:
        raise invalid
    return d


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    digits = []
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        v //= 10
    frac = "." + "".join(reversed(digits)) if printed else ""
    return frac, v


def go_format_duration(ns: int) -> str:
    """time.Duration.String.

    >>> [go_format_duration(x) for x in (0, 300 * 10**9, 3600 * 10**9, 1500000000)]
    ['0s', '5m0s', '1h0m0s', '1.5s']
    >>> go_format_duration(MAX_INT64)
    '2562047h47m16.854775807s'
    >>> go_format_duration(1500)
    '1.5\u00b5s'
    """
    neg = ns < 0
    u = -ns if neg else ns
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            frac, u = _fmt_frac(u, 0)
            out = f"{u}{frac}ns"
        elif u < MILLISECOND:
            frac, u = _fmt_frac(u, 3)
            out = f"{u}{frac}\u00b5s"
        else:
            frac, u = _fmt_frac(u, 6)
            out = f"{u}{frac}ms"
    else:
        frac, u = _fmt_frac(u, 9)
        out = f"{u % 60}{frac}s"
        u //= 60
        if u > 0:
            out = f"{u % 60}m" + out
            u //= 60
            if u > 0:
                out = f"{u}h" + out
    return "-" + out if neg else out


def _wrap_int64(n: int) -> int:
    """Two's-complement int64 overflow, as Go's integer multiply does."""
    n &= (1 << 64) - 1
    return n - (1 << 64) if n >= 1 << 63 else n


# --------------------------------------------------------------------------
# envconfig


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


# slog levels
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


# --------------------------------------------------------------------------
# net


def go_parse_ip(s: str) -> str | None:
    """net.ParseIP(s).String(), or None when Go would return nil.

    >>> go_parse_ip("::1"), go_parse_ip("::ffff:10.0.0.1"), go_parse_ip("010.0.0.1")
    ('::1', '10.0.0.1', None)
    """
    if "%" in s:  # ParseIP does not accept zones
        return None
    try:
        if ":" in s:
            ip6 = ipaddress.IPv6Address(s)
            if ip6.ipv4_mapped is not None:
                return str(ip6.ipv4_mapped)
            return str(ip6)
        return str(ipaddress.IPv4Address(s))
    except ValueError:
        return None


def go_split_host_port(hostport: str) -> tuple[str, str]:
    """net.SplitHostPort; raises ValueError with Go's reason.

    >>> go_split_host_port("[::1]:11434"), go_split_host_port(":8080")
    (('::1', '11434'), ('', '8080'))
    """
    def err(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise err("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise err("missing ']' in address")
        if end + 1 == len(hostport):
            raise err("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise err("too many colons in address")
            raise err("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise err("too many colons in address")
    if "[" in hostport[j:]:
        raise err("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise err("unexpected ']' in address")
    return host, hostport[i + 1 :]


def go_join_host_port(host: str, port: str) -> str:
    """net.JoinHostPort: brackets hosts that contain a colon.

    >>> go_join_host_port("::1", "11434")
    '[::1]:11434'
    """
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class OllamaHost(NamedTuple):
    """Everything envconfig.Host() works out from OLLAMA_HOST."""

    scheme: str
    host: str  # without brackets; "" means all interfaces
    port: str  # kept as the string Go keeps (e.g. "0080" stays "0080")
    path: str
    port_invalid: bool  # Ollama logged "invalid port, using default"

    @property
    def hostport(self) -> str:
        """What the server passes to net.Listen."""
        return go_join_host_port(self.host, self.port)

    @property
    def url(self) -> str:
        """url.URL.String(): the value shown in the ``server config`` line."""
        u = f"{self.scheme}://{self.hostport}"
        if self.path:
            u += "/" + self.path
        return u


def ollama_host(raw: str | None) -> OllamaHost:
    """envconfig.Host with all its details.

    >>> ollama_host("").url, ollama_host("0.0.0.0").url, ollama_host("https://x").url
    ('http://127.0.0.1:11434', 'http://0.0.0.0:11434', 'https://x:443')
    """
    default_port = "11434"
    s = go_trim_space(ollama_var(raw))
    if "://" in s:
        scheme, hostport = s.split("://", 1)
        if scheme == "http":
            default_port = "80"
        elif scheme == "https":
            default_port = "443"
    else:
        scheme, hostport = "http", s
        if s == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    hostport, _, path = hostport.partition("/")
    try:
        host, port = go_split_host_port(hostport)
    except ValueError:
        host, port = "127.0.0.1", default_port
        ip = go_parse_ip(hostport.strip("[]"))
        if ip is not None:
            host = ip
        elif hostport != "":
            host = hostport
    invalid = False
    try:
        n = go_parse_int(port, 32)
        if n > 65535 or n < 0:
            invalid = True
    except ValueError:
        invalid = True
    if invalid:
        port = default_port
    return OllamaHost(scheme, host, port, path, invalid)


def parse_ollama_host(raw: str | None) -> tuple[str, str, str]:
    """envconfig.Host as ``(scheme, host, port)``; port is a string, as in Go.

    >>> parse_ollama_host(None)
    ('http', '127.0.0.1', '11434')
    >>> parse_ollama_host("0.0.0.0"), parse_ollama_host(":8080")
    (('http', '0.0.0.0', '11434'), ('http', '', '8080'))
    >>> parse_ollama_host("http://x:1"), parse_ollama_host("[::1]:11434")
    (('http', 'x', '1'), ('http', '::1', '11434'))
    >>> parse_ollama_host("https://example.com"), parse_ollama_host("http://example.com")
    (('https', 'example.com', '443'), ('http', 'example.com', '80'))
    """
    h = ollama_host(raw)
    return h.scheme, h.host, h.port


def connectable_host(raw: str | None) -> OllamaHost:
    """envconfig.ConnectableHost: 0.0.0.0 -> 127.0.0.1 and :: -> ::1 (client side).

    >>> connectable_host("0.0.0.0:9000").hostport
    '127.0.0.1:9000'
    """
    h = ollama_host(raw)
    ip = go_parse_ip(h.host) if h.host else None
    if ip is not None and ipaddress.ip_address(ip).is_unspecified:
        h = h._replace(host="127.0.0.1" if ":" not in ip else "::1")
    return h


# --------------------------------------------------------------------------
# api.FormatParams (Modelfile PARAMETER lines, checked client-side)

#: api.Options JSON tags and their Go kinds (api/types.go, Options + Runner).
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


def format_params(params: dict) -> dict:
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
    out = {}
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


def shown_params(params: dict) -> dict:
    """/api/show's `parameters` ({name: [values]}) -> the typed values format_params gives.

    Ollama prints each stored option with Go's %#v (server/routes.go, ShowHandler) after JSON
    decoding, so every number is a float64: num_ctx 1000000 reads `1e+06`, 1048576 `1.048576e+06`,
    which api.FormatParams's ParseInt would refuse. Integral numbers are integers again here.

    >>> shown_params({"num_ctx": ["1.048576e+06"], "num_thread": ["3"], "temperature": ["0.5"]})
    {'num_ctx': 1048576, 'num_thread': 3, 'temperature': 0.5}
    """
    out = {}
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
