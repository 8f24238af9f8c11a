"""Table-driven tests: ollama_deploy.gocompat (and the double's gorules) must parse exactly as Ollama v0.32.15 (Go) does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "testbed" / "double"))

from ollama_double import gorules  # noqa: E402

from ollama_deploy.gocompat import duration, envconfig, hostport, params, strconv  # noqa: E402

S = 10**9
M = 60 * S
H = 60 * M
FOREVER = (1 << 63) - 1


@pytest.mark.parametrize("raw,expected", [
    ("5m", 5 * M),
    ("1h30m", 90 * M),
    ("0", 0),
    ("300", 300 * S),       # bare integer: seconds
    ("-1", FOREVER),        # negative: never unload
    ("-1s", FOREVER),
    ("1.5", 5 * M),         # neither a duration nor an integer: silently 5m
    ("abc", 5 * M),
    ("", 5 * M),
    (None, 5 * M),
    ("  '10m' ", 10 * M),   # Var() trims spaces, then quotes
    ("+30", 30 * S),        # ParseInt accepts a sign
    ("1.5h", 90 * M),
    ("-0", 0),
    ("2562047h47m16.854775807s", FOREVER),
    ("9223372037", FOREVER),  # seconds * 1e9 wraps negative in Go -> forever
])
def test_parse_keep_alive(raw, expected):
    assert envconfig.parse_keep_alive(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("0", 0), ("-0", 0), ("+0", 0), ("1ns", 1), ("1us", 1000), ("1\u00b5s", 1000), ("1\u03bcs", 1000),
    ("1.5s", 1_500_000_000), (".5s", 500_000_000), ("1.s", S), ("1h1m1s", H + M + S),
    ("-1.5h", -90 * M), ("1m30s500ms", 90 * S + 500_000_000), ("0.000000001s", 1),
    ("2562047h47m16.854775807s", FOREVER), ("-2562047h47m16.854775808s", -(1 << 63)),
])
def test_go_parse_duration_ok(raw, expected):
    assert duration.go_parse_duration(raw) == expected


@pytest.mark.parametrize("raw,message", [
    ("", 'time: invalid duration ""'),
    ("300", 'time: missing unit in duration "300"'),
    ("00", 'time: missing unit in duration "00"'),
    ("abc", 'time: invalid duration "abc"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("1h 30m", 'time: unknown unit "h " in duration "1h 30m"'),
    (".s", 'time: invalid duration ".s"'),
    ("-", 'time: invalid duration "-"'),
    ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("1\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
])
def test_go_parse_duration_errors(raw, message):
    with pytest.raises(ValueError) as e:
        duration.go_parse_duration(raw)
    assert str(e.value) == message


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5\u00b5s"), (1_500_000, "1.5ms"), (S, "1s"), (1_500_000_000, "1.5s"),
    (5 * M, "5m0s"), (H, "1h0m0s"), (90 * M, "1h30m0s"), (H + 500_000_000, "1h0m0.5s"), (-90 * S, "-1m30s"),
    (FOREVER, "2562047h47m16.854775807s"), (-(1 << 63), "-2562047h47m16.854775808s"),
])
def test_go_format_duration(ns, text):
    assert duration.go_format_duration(ns) == text


@pytest.mark.parametrize("s", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_parse_bool_true(s):
    assert strconv.go_parse_bool(s) is True


@pytest.mark.parametrize("s", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_parse_bool_false(s):
    assert strconv.go_parse_bool(s) is False


@pytest.mark.parametrize("s", ["on", "yes", "off", "no", "tRUE", "2", "", " true", "y"])
def test_go_parse_bool_invalid(s):
    with pytest.raises(ValueError, match="strconv.ParseBool: parsing"):
        strconv.go_parse_bool(s)


@pytest.mark.parametrize("raw,default,expected", [
    ("on", False, True),        # unparseable counts as true
    ("yes", False, True),
    ("off", False, True),       # even "off"!
    ("0", True, False),
    ("false", True, False),
    ("1", False, True),
    ("", True, True),
    ("", False, False),
    (None, True, True),
    ('"0"', True, False),       # quotes trimmed by Var()
    ("  ", True, True),
    ("' '", True, True),        # Trim quotes after spaces: " " is not empty -> unparseable -> true
])
def test_ollama_bool(raw, default, expected):
    assert envconfig.ollama_bool(raw, default) is expected


@pytest.mark.parametrize("raw,expected", [
    ('  "abc"  ', "abc"), ("'x'", "x"), ("\"'x'\"", "x"), ("\t5m\n", "5m"), ("\u00a05m\u00a0", "5m"),
    ("\x1c5m", "\x1c5m"),  # Go's TrimSpace keeps U+001C (Python's strip would not)
    ("a b", "a b"), (None, ""),
])
def test_ollama_var(raw, expected):
    assert envconfig.ollama_var(raw) == expected


@pytest.mark.parametrize("s,expected", [("0", 0), ("42", 42), ("18446744073709551615", (1 << 64) - 1)])
def test_go_parse_uint_ok(s, expected):
    assert strconv.go_parse_uint(s) == expected


@pytest.mark.parametrize("s", ["", "-1", "+1", "1_000", " 1", "0x10", "1.0", "18446744073709551616", "\u0661"])
def test_go_parse_uint_invalid(s):
    with pytest.raises(ValueError):
        strconv.go_parse_uint(s)


@pytest.mark.parametrize("raw,default,expected", [("4", 1, 4), (" 4 ", 1, 4), ("abc", 1, 1), ("-1", 512, 512), ("", 0, 0)])
def test_ollama_uint(raw, default, expected):
    assert envconfig.ollama_uint(raw, default) == expected


@pytest.mark.parametrize("raw,expected", [
    (None, ("http", "127.0.0.1", "11434")),
    ("", ("http", "127.0.0.1", "11434")),
    ("0.0.0.0", ("http", "0.0.0.0", "11434")),
    (":8080", ("http", "", "8080")),
    ("1.2.3.4:5678", ("http", "1.2.3.4", "5678")),
    ("http://x:1", ("http", "x", "1")),
    ("[::1]:11434", ("http", "::1", "11434")),
    ("::1", ("http", "::1", "11434")),
    ("[::1]", ("http", "::1", "11434")),
    ("https://example.com", ("https", "example.com", "443")),
    ("http://example.com", ("http", "example.com", "80")),
    ("example.com", ("http", "example.com", "11434")),
    ("ollama.com", ("https", "ollama.com", "443")),
    ("http://0.0.0.0:11434/", ("http", "0.0.0.0", "11434")),
    ('"0.0.0.0:9999"', ("http", "0.0.0.0", "9999")),
    ("127.0.0.1:99999", ("http", "127.0.0.1", "11434")),  # invalid port -> default (with a WARN)
    ("127.0.0.1:abc", ("http", "127.0.0.1", "11434")),
    ("unix://x", ("unix", "x", "11434")),
])
def test_parse_ollama_host(raw, expected):
    assert hostport.parse_ollama_host(raw) == expected


def test_ollama_host_details():
    assert hostport.ollama_host("0.0.0.0").url == "http://0.0.0.0:11434"
    assert hostport.ollama_host("[::1]:8000").url == "http://[::1]:8000"
    assert hostport.ollama_host("http://h:1/prefix/x").url == "http://h:1/prefix/x"
    assert hostport.ollama_host("127.0.0.1:99999").port_invalid is True
    assert hostport.connectable_host("0.0.0.0").hostport == "127.0.0.1:11434"
    assert hostport.connectable_host("[::]:80").hostport == "[::1]:80"


@pytest.mark.parametrize("value,expected", [
    (None, None), (0, 0), (300, 300 * S), (1.5, 1_500_000_000), (-1, FOREVER), ("5m", 5 * M), ("0", 0), ("-1m", FOREVER),
])
def test_parse_request_keep_alive(value, expected):
    assert gorules.parse_request_keep_alive(value) == expected


@pytest.mark.parametrize("value", ["300", "abc", True, [1], {"a": 1}])
def test_parse_request_keep_alive_errors(value):
    with pytest.raises(ValueError):
        gorules.parse_request_keep_alive(value)


@pytest.mark.parametrize("raw,level,name", [
    ("", 0, "INFO"), ("0", 0, "INFO"), ("false", 0, "INFO"), ("1", -4, "DEBUG"), ("true", -4, "DEBUG"),
    ("on", 0, "INFO"),  # LogLevel is not Bool(): "on" is ignored here
    ("2", -8, "DEBUG-4"), ("-1", 4, "WARN"), ("-2", 8, "ERROR"),
])
def test_log_level(raw, level, name):
    assert envconfig.ollama_log_level(raw) == level
    assert gorules.slog_level_name(level) == name


def test_format_params():
    assert params.format_params({"num_gpu": ["99"], "use_mmap": ["false"], "top_p": ["0.1"]}) == {
        "num_gpu": 99, "use_mmap": False, "top_p": pytest.approx(0.1)}
    with pytest.raises(ValueError, match="unknown parameter 'num_threads'"):
        params.format_params({"num_threads": ["8"]})
    with pytest.raises(ValueError, match=r"invalid int value \[eight\]"):
        params.format_params({"num_thread": ["eight"]})


def test_docstring_examples():
    import doctest

    for module in (duration, envconfig, hostport, params, strconv, gorules):
        assert doctest.testmod(module).failed == 0, module.__name__
