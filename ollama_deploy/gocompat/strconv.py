"""Go's strconv and strings routines, as Ollama v0.32.15 calls them while reading its environment.

Error messages keep Go's wording: a deploy check may show one next to the value Ollama would reject.

Example:
    go_parse_bool("T")          # True, as strconv.ParseBool
"""

from __future__ import annotations

MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)
MAX_UINT64 = (1 << 64) - 1

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


def _wrap_int64(n: int) -> int:
    """Two's-complement int64 overflow, as Go's integer multiply does."""
    n &= (1 << 64) - 1
    return n - (1 << 64) if n >= 1 << 63 else n
