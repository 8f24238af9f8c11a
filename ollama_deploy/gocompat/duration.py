"""Go's time.ParseDuration and Duration.String, in nanoseconds (int64 values).

Example:
    go_parse_duration("1h30m")  # 5400 * 10**9
"""

from __future__ import annotations

from ollama_deploy.gocompat.strconv import MAX_INT64

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


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
