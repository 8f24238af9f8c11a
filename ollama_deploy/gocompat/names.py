"""Model names as Ollama v0.32.15 parses them (``types/model/name.go``): host/namespace/model:tag.

Example:
    parse_model_name("qwen2.5:0.5b")   # ("registry.ollama.ai", "library", "qwen2.5", "0.5b")
"""
from __future__ import annotations

DEFAULT_HOST = "registry.ollama.ai"  # types/model/name.go defaultHost
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"  # name.go MissingPart: a part promised by a separator but empty
_KIND_MAXLEN = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    # name.go cutPromised: cut at the LAST sep; an empty side becomes MissingPart
    # (so "a/" or ":tag" are refused instead of silently defaulted).
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + len(sep):] or _MISSING, True


def _part_problem(kind: str, s: str) -> str | None:
    """Why ``s`` is not a valid ``kind`` part (name.go isValidPart), or None."""
    if s == _MISSING or s == "":
        return f"empty {kind}"
    if len(s) > _KIND_MAXLEN[kind]:
        return f"{kind} {s!r} is longer than {_KIND_MAXLEN[kind]} characters"
    if kind == "host" and "/" in s:
        return "too many '/'-separated parts (at most host/namespace/model)"
    for i, c in enumerate(s):
        alnum_ = c.isascii() and (c.isalnum() or c == "_")
        if i == 0:
            if not alnum_:
                return f"{kind} {s!r} must start with a letter, digit or '_'"
        elif c == "." and kind == "namespace":
            return f"namespace {s!r} may not contain '.'"
        elif c == ":" and kind != "host":
            return f"{kind} {s!r} may not contain ':'"
        elif not (alnum_ or c in "-_.:"):
            return f"{kind} {s!r} contains invalid character {c!r}"
    return None


def _parse_name(name: str) -> tuple[str, str, str, str, str]:
    """(scheme, host, namespace, model, tag); scheme is "" when the name gives none."""
    if not isinstance(name, str):
        raise ValueError(f"invalid model name {name!r}: not a string")
    # The pull route trims whitespace before parsing (internal/modelref ParseRef).
    s = name.strip()
    if not s:
        raise ValueError("invalid model name '': empty")
    scheme = host = namespace = tag = ""
    # name.go ParseNameBare: "/" is illegal in a tag, so a ':' after the last
    # '/' starts the tag; one before it belongs to the host's port.
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        model = s
    else:
        s, namespace, promised = _cut_promised(s, "/")
        if not promised:
            namespace = s
        else:
            scheme, sep, host = s.partition("://")
            if not sep:
                scheme, host = "", scheme
    for kind, part in (("host", host or DEFAULT_HOST), ("namespace", namespace or DEFAULT_NAMESPACE),
                       ("model", model), ("tag", tag or DEFAULT_TAG)):
        problem = _part_problem(kind, part)
        if problem:
            raise ValueError(f"invalid model name {name!r}: {problem}")
    if scheme not in ("", "http", "https"):
        # Ollama would build a "<scheme>://" URL from it and fail later; say so now.
        raise ValueError(f"invalid model name {name!r}: scheme {scheme!r} is not http or https")
    return scheme, host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG


def parse_model_name(name: str) -> tuple[str, str, str, str]:
    """Split a model name as Ollama does: ``(host, namespace, model, tag)`` with defaults filled.

    Mirrors ``model.ParseName`` + ``Name.IsValid`` (types/model/name.go, Ollama
    v0.32.15): ``[[scheme://]host/][namespace/]model[:tag]``, defaults
    registry.ollama.ai / library / latest.  Every part starts with a letter,
    digit or '_' and continues with those or '-', '_', '.'; a namespace may not
    contain '.', only the host may contain ':' (a port); host up to 350
    characters, the others up to 80.  Raises ``ValueError`` saying why a name
    is malformed.

    Example::

        parse_model_name("qwen2.5-coder:7b")
        # -> ("registry.ollama.ai", "library", "qwen2.5-coder", "7b")
        parse_model_name("10.0.0.5:8080/ns/m:t")   # -> ("10.0.0.5:8080", "ns", "m", "t")
        parse_model_name("llama3.2:")               # ValueError: ... empty tag
    """
    return _parse_name(name)[1:]


def canonical_model(name: str) -> str:
    """Ollama's short display name with an explicit tag: 'llama3.2' -> 'llama3.2:latest'."""
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def tuned_name(model: str) -> str:
    """The derived model carrying per-model parameters: 'qwen2.5-coder:7b' -> 'qwen2.5-coder:7b-tuned'."""
    return f"{canonical_model(model)}-tuned"


def model_name_problem(name: str) -> str | None:
    """Why `name` is not a model name Ollama accepts, or None."""
    try:
        parse_model_name(name)
    except ValueError as e:
        return str(e)
    return None
