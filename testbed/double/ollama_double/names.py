"""Model names as Ollama parses them (types/model/name.go).

``parse_name`` fills in registry.ollama.ai/library/...:latest; the store maps
a Name to its manifest path.  Apart from store.py because the registry client
and the API handlers parse names without touching the disk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MISSING = "!MISSING!"


@dataclasses.dataclass(frozen=True)
class Name:
    """A fully or partly qualified model name (model.Name)."""

    host: str = ""
    namespace: str = ""
    model: str = ""
    tag: str = ""
    scheme: str = ""

    def is_valid(self) -> bool:
        return all(
            _valid_part(kind, part)
            for kind, part in (("host", self.host), ("namespace", self.namespace), ("model", self.model), ("tag", self.tag))
        )

    def display_shortest(self) -> str:
        """host/ns/ only when not the defaults (what /api/tags and ps show)."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def filepath(self) -> Path:
        return Path(self.host, self.namespace, self.model, self.tag)


def _cut_promised(s: str, sep: str):
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return (s[:i] or MISSING), (s[i + len(sep):] or MISSING), True


def parse_name_bare(s: str) -> Name:
    """model.ParseNameBare."""
    tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return Name(model=s, tag=tag)
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return Name(namespace=s, model=model, tag=tag)
    scheme = ""
    if "://" in s:
        scheme, s = s.split("://", 1)
    return Name(host=s, namespace=namespace, model=model, tag=tag, scheme=scheme)


def parse_name(s: str) -> Name:
    """model.ParseName: bare parse merged with registry.ollama.ai/library/…:latest."""
    n = parse_name_bare(s)
    return Name(
        host=n.host or DEFAULT_HOST,
        namespace=n.namespace or DEFAULT_NAMESPACE,
        model=n.model,
        tag=n.tag or DEFAULT_TAG,
        scheme=n.scheme or "https",
    )


def _valid_part(kind: str, s: str) -> bool:
    if not 1 <= len(s) <= (350 if kind == "host" else 80):
        return False
    for i, c in enumerate(s):
        alnum = c.isascii() and (c.isalnum() or c == "_")
        if i == 0:
            if not alnum:
                return False
        elif c in "_-":
            continue
        elif c == ".":
            if kind == "namespace":
                return False
        elif c == ":":
            if kind != "host":
                return False
        elif not alnum:
            return False
    return True
