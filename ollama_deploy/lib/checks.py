"""The rules each setting's value must meet, as pure functions, and the types that attach them.

``OllamaSettings`` (``ollama_deploy.lib.settings``) declares each setting once, with one of these types;
pydantic runs the rule when the setting is read. A rule raises ValueError with the reason, in words an
operator can act on; the settings module prefixes it with the key and the value.

Example:
    cpu_quota("2000%")    # "2000%"; cpu_quota("20") raises: systemd CPUQuota takes a percentage ...
"""
from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import socket
import urllib.parse
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator

from ollama_deploy.gocompat.duration import go_parse_duration
from ollama_deploy.gocompat.hostport import ollama_host
from ollama_deploy.gocompat.names import canonical_model, model_name_problem
from ollama_deploy.gocompat.params import OPTION_KINDS, format_params
from ollama_deploy.gocompat.strconv import go_parse_int

# The cache types llama.cpp b10488 takes (common/arg.cpp kv_cache_types; Ollama passes the value
# through lower-cased), and those it stores in 32-element blocks, which need flash attention for V.
KvCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
KV_CACHE_TYPES: tuple[str, ...] = get_args(KvCacheType)
QUANTIZED_KV = ("q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
LLAMA_MAX_SEQ = 256  # llama.cpp b10488 src/llama-cparams.h: the most parallel sequences a context takes


def listens_on_loopback(raw: str | None) -> bool:
    """Whether OLLAMA_HOST (as Ollama parses it) binds only loopback; "" and 0.0.0.0 bind everything."""
    host = ollama_host(raw).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or "": all interfaces or a resolved address


def declared(field: Any) -> dict[str, Any]:
    """What a setting's declaration says besides its type: dropin, env, directive, unit (see setting())."""
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def keep_alive(v):
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v  # whole seconds
    for parse in (go_parse_duration, go_parse_int):
        try:
            parse(v.strip().strip("\"'"))
            return v
        except (ValueError, AttributeError):  # AttributeError: not a string (e.g. 1.5 from --data)
            pass
    raise ValueError("Ollama reads neither a Go duration nor whole seconds from it and silently keeps 5m; "
                     "write e.g. 30m, 1h30m or 1800")


def unsigned(v):
    if v is not None and v < 0:
        raise ValueError("Ollama parses it as an unsigned integer: a negative value is ignored (default used)")
    return v


def threads(v):
    if v is not None and v < 1:
        raise ValueError("at least 1 (0 or less is no thread count: llama.cpp puts a default of its own in its place)")
    return v


def parallel(v):
    if v is not None and v < 1:
        raise ValueError("at least 1 (Ollama treats 0 as 1)")
    if v is not None and v > LLAMA_MAX_SEQ:
        # Ollama passes it to llama-server as -np; llama.cpp refuses more sequences and every model
        # then fails to load ("n_seq_max must be <= 256", measured on real 0.32.15).
        raise ValueError(f"at most {LLAMA_MAX_SEQ} (llama.cpp's LLAMA_MAX_SEQ): more and no model loads")
    return v


def cpu_quota(v):
    if v is not None and (not re.fullmatch(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?%", v) or float(v[:-1]) == 0):
        raise ValueError("systemd CPUQuota takes a percentage of one CPU above 0, with at most two decimals, "
                         "e.g. 2000% for 20 CPUs or 12.5%")
    return v


def cpu_weight(v):
    if v is not None and not 1 <= v <= 10000:
        raise ValueError("systemd CPUWeight is 1-10000")
    return v


def memory_max(v):
    if v is None or v == "infinity" or re.fullmatch(r"[1-9][0-9]*(\.[0-9]+)?[KMGTPE]?|[1-9][0-9]*(\.[0-9]{1,2})?%",
                                                    v) and not (v.endswith("%") and float(v[:-1]) > 100):
        return v
    m = re.fullmatch(r"([0-9.]+)\s*([KMGTPE])i?B", v, re.I)
    hint = f"; did you mean {m.group(1)}{m.group(2).upper()}?" if m else ""
    raise ValueError("systemd MemoryMax takes bytes with an optional 1024-based K, M, G, T, P or E suffix "
                     f"(e.g. 20G, 1.5G), a percentage of RAM up to 100% (e.g. 60%), or infinity{hint}")


def visible_devices(v):
    if v is None:
        return v
    tokens = [t.strip() for t in v.split(",")]
    if v.strip() != "-1" and not all(re.fullmatch(r"[0-9]+|GPU-[0-9a-fA-F-]+", t) for t in tokens):
        raise ValueError("comma-separated GPU indices or GPU-<uuid> values, or -1 for none")
    if len(set(tokens)) != len(tokens):
        raise ValueError("a GPU is listed twice")
    return v


def llm_library(v):
    if v is not None and not re.fullmatch(r"cuda_v1[23]|cuda_jetpack[56]|vulkan|rocm_v[0-9_]+|mlx_cuda_v13", v):
        raise ValueError("not a library directory under lib/ollama: Ollama would skip every GPU library and "
                         "run on the CPU (cpu variants are picked automatically since 0.5.8); use cuda_v12, "
                         "cuda_v13 or vulkan, or leave it unset")
    return v


def timespan(v):
    units = r"(us|usec|ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?|d|days?|w|weeks?)"
    if not re.fullmatch(rf"([1-9][0-9]*{units} ?)+", v.strip()) or v != v.strip():
        raise ValueError("a systemd time span such as 5min, 30s or 1h 30min")
    return v


def path(v):
    # Written into the unit (ExecStart, ReadWritePaths) and tmpfiles.d lines, whose fields end at
    # whitespace and where % starts a specifier: only plain absolute paths.
    if not v.startswith("/") or posixpath.normpath(v) != v or v == "/":
        example = posixpath.normpath("/" + v.lstrip("/"))
        raise ValueError(f"an absolute, normalised path other than / (e.g. {example!r})")
    bad = sorted({c for c in v if not (c.isalnum() or c in "/._-+@:")})
    if bad:
        raise ValueError(f"{''.join(bad)!r} in a path written into systemd and tmpfiles.d lines; use letters, "
                         "digits and / . _ - + @ : only")
    return v


def no_credentials_in_urls(v):
    if "@" in v.split("://", 1)[-1].split("/", 1)[0]:
        raise ValueError("credentials in a URL end up in logs and inventories; put a token in the control "
                         "node's environment as OLLAMA_DEPLOY_MIRROR_TOKEN")
    return v


def version(v):
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?", v):
        raise ValueError("a release version such as 0.32.15")
    return v


def sha256(v):
    for name, digest in v.items():
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ValueError(f"{name}: a sha256 is 64 hex digits")
    return v


def model_names(v):
    seen: dict[str, str] = {}
    for name in v:
        problem = model_name_problem(name)
        if problem:
            raise ValueError(f"model {name!r}: {problem}")
        key = canonical_model(name)
        if key in seen:
            raise ValueError(f"model {name!r} is listed twice (as {seen[key]!r})")
        seen[key] = name
    return v


def parameters(v):
    for model, params in v.items():
        try:
            format_params({k: val if isinstance(val, list) else [str(val)] for k, val in params.items()})
        except ValueError as e:
            raise ValueError(f"{model}: {e} (known: {', '.join(sorted(OPTION_KINDS))})") from None
    return v


def host(v):
    if v is None:
        return v
    parsed = ollama_host(v)
    if parsed.port_invalid:
        raise ValueError("Ollama cannot parse the port and would silently listen on 11434")
    if int(parsed.port) == 0:
        raise ValueError("port 0 makes Ollama listen on a random port that no client knows")
    if int(parsed.port) < 1024:
        # http:// or https:// without a port means 80 or 443 (envconfig.Host).
        raise ValueError(f"port {parsed.port} is below 1024 and the unit grants no capabilities "
                         "(CAP_NET_BIND_SERVICE), so Ollama could not bind it and would crash-loop; "
                         "use a port from 1024 (default 11434)")
    return v


def pem_certificate(key: str, path: str) -> None:
    """A control-node file holding a PEM certificate (read at plan time, so before any host changes)."""
    try:
        text = open(os.path.expanduser(path)).read()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"key {key}, value {path!r}: cannot be read on the control node ({e})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"key {key}, value {path!r}: not a PEM certificate")


def site_registry(url: str, http_networks: list[str]) -> None:
    """https://name[:port], or http:// to an address inside one of `http_networks` (models cross the
    network in the clear, so only where the operator said so)."""
    why = f"key ollama_site_registry, value {url!r}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{why}: use https://name[:port] (or http:// on an allowed network)")
    if parts.scheme == "https":
        return
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(parts.hostname, None)[0][4][0])
    except (OSError, ValueError):
        raise ValueError(f"{why}: {parts.hostname} does not resolve here, so it cannot be checked against "
                         "ollama_site_registry_http_networks") from None
    if not any(address in ipaddress.ip_network(n, strict=False) for n in http_networks):
        raise ValueError(f"{why}: plain HTTP sends models in the clear; its address {address} is in no network of "
                         f"ollama_site_registry_http_networks {http_networks}; use https with a site CA or add "
                         "the network")


def networks(v):
    for net in v:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"{net!r} is not a network (CIDR such as 10.0.0.0/24)") from None
    return v


def writable(s):
    """A value that lands in a drop-in may hold any printable character (it is quoted and escaped
    for systemd), but no control character: systemd would end or mangle the line."""
    for key, field in type(s).model_fields.items():
        value = getattr(s, key)
        dropin = declared(field).get("dropin")
        if not dropin or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            bad = [c for c in str(item) if ord(c) < 32 or ord(c) == 127]
            if bad:
                raise ValueError(f"key {key}, value {value!r}: control character {bad[0]!r} cannot be written "
                                 f"into {dropin}")
    return s


def exposure(s):
    exposed = not listens_on_loopback(s.ollama_host)
    if exposed and not s.ollama_allowed_networks:
        raise ValueError(f"key ollama_host, value {s.ollama_host!r}: the API has no authentication; "
                         "listening beyond loopback needs ollama_allowed_networks (the client networks to admit)")
    if not exposed and s.ollama_allowed_networks:
        raise ValueError(f"key ollama_allowed_networks, value {s.ollama_allowed_networks!r}: does nothing "
                         "while Ollama listens on loopback (set ollama_host)")
    if "*" in (s.ollama_origins or []) and not s.ollama_allow_any_origin:
        raise ValueError(f"key ollama_origins, value {s.ollama_origins!r}: '*' lets any web page call the "
                         "API; set ollama_allow_any_origin=true if that is really meant")
    return s


def combinations(s):
    if s.ollama_kv_cache_type in QUANTIZED_KV and s.ollama_flash_attention is False:
        raise ValueError(f"key ollama_kv_cache_type, value {s.ollama_kv_cache_type!r}: with "
                         "ollama_flash_attention=False llama.cpp refuses a quantized V cache without flash "
                         "attention, so every model load fails; enable flash attention or use f16")
    if s.ollama_site_ca_file is not None:
        pem_certificate("ollama_site_ca_file", s.ollama_site_ca_file)
    if s.ollama_site_registry is not None:
        site_registry(s.ollama_site_registry, s.ollama_site_registry_http_networks)
        if s.ollama_fleet_cache or s.ollama_models_local_dir is not None:
            raise ValueError(f"key ollama_site_registry, value {s.ollama_site_registry!r}: models come either "
                             "from the site registry or from the fleet cache; unset ollama_fleet_cache and "
                             "ollama_models_local_dir, or this")
    models = {canonical_model(m) for m in s.ollama_models + s.ollama_extra_models}
    for model in s.ollama_model_parameters:
        if canonical_model(model) not in models:
            raise ValueError(f"key ollama_model_parameters, value {s.ollama_model_parameters!r}: names "
                             f"{model!r}, which is not in ollama_models")
    return s


# The types the settings declaration uses: each attaches one rule above.
KeepAlive = Annotated[str | int | None, BeforeValidator(keep_alive)]
Unsigned = Annotated[int, AfterValidator(unsigned)]
Parallel = Annotated[int, AfterValidator(parallel)]
Threads = Annotated[int, AfterValidator(threads)]
CpuQuota = Annotated[str, AfterValidator(cpu_quota)]
CpuWeight = Annotated[int, AfterValidator(cpu_weight)]
MemoryMax = Annotated[str, AfterValidator(memory_max)]
VisibleDevices = Annotated[str, AfterValidator(visible_devices)]
LibraryDir = Annotated[str, AfterValidator(llm_library)]
TimeSpan = Annotated[str, AfterValidator(timespan)]
PlainPath = Annotated[str, AfterValidator(path)]
Url = Annotated[str, AfterValidator(no_credentials_in_urls)]
Version = Annotated[str, AfterValidator(version)]
Sha256s = Annotated[dict[str, str], AfterValidator(sha256)]
ModelNames = Annotated[list[str], AfterValidator(model_names)]
ModelParameters = Annotated[dict[str, dict[str, Any]], AfterValidator(parameters)]
OllamaHostValue = Annotated[str, AfterValidator(host)]
Networks = Annotated[list[str], AfterValidator(networks)]
