"""What one local model is: its manifest and the layers GetModel reads from it.

Manifest is a parsed manifest file; Model adds the config blob, the GGUF
path, template, system, params and licenses, and answers what the scheduler
and the API ask of it (GGUF metadata, capabilities, details).  tensor_infos
lists a GGUF file's tensors for /api/show.  store.py reads and writes these.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ollama_deploy.gocompat import gguf

from .names import Name


@dataclasses.dataclass
class Manifest:
    name: Name
    path: Path
    data: dict
    digest: str  # hex sha256 of the manifest file bytes
    mtime_ns: int

    @property
    def layers(self) -> list[dict]:
        return list(self.data.get("layers") or [])

    @property
    def config(self) -> dict:
        return dict(self.data.get("config") or {})

    def size(self) -> int:
        return sum(int(layer.get("size", 0)) for layer in self.layers + [self.config])


_THINKING_ACTION = re.compile(r"([^\s{}]+)\s*\{\{-?\s*\.Thinking\s*-?\}\}\s*([^\s{}]+)")


@dataclasses.dataclass
class Model:
    """What the scheduler and the API need to know about one local model."""

    name: Name
    manifest: Manifest
    config: dict
    model_path: str
    template: str = ""
    system: str = ""
    params: dict = dataclasses.field(default_factory=dict)
    license: list = dataclasses.field(default_factory=list)
    has_template: bool = False
    parent_model: str = ""  # the model layer's "from" (set by create from another model)
    _kv: dict | None = None

    @property
    def short_name(self) -> str:
        return self.name.display_shortest()

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def kv(self) -> dict:
        if self._kv is None:
            self._kv = gguf.read_kv(self.model_path)
        return self._kv

    def thinking_tags(self) -> tuple[str, str]:
        """thinking.InferTags, for templates shaped like deepseek-r1's: the text either side of
        ``{{ .Thinking }}`` inside a range over .Messages ("", "" when there is none)."""
        if "range" not in self.template or ".Messages" not in self.template:
            return "", ""
        m = _THINKING_ACTION.search(self.template)
        return (m.group(1), m.group(2)) if m else ("", "")

    def capabilities(self) -> list[str]:
        """Model.Capabilities (server/images.go) for a GGUF model with a Go template: embedding when
        the metadata has <arch>.pooling_type, else completion; then the template's tools, insert,
        thinking."""
        caps = ["embedding" if gguf.is_embedding(self.kv()) else "completion"]
        caps += [c for c, field in (("tools", ".Tools"), ("insert", ".Suffix")) if field in self.template]
        return caps + (["thinking"] if all(self.thinking_tags()) else [])

    def details(self, with_parent: bool = True) -> dict:
        """api.ModelDetails; /api/tags and /api/show name the parent model, /api/ps does not."""
        c = self.config
        return {
            "parent_model": self.parent_model if with_parent else "",
            "format": c.get("model_format", ""),
            "family": c.get("model_family", ""),
            "families": c.get("model_families"),
            "parameter_size": c.get("model_type", ""),
            "quantization_level": c.get("file_type", ""),
        }


# ggml_type -> fs/ggml TensorType.String()
TENSOR_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
                10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
                17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
                24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0",
                35: "TQ2_0", 39: "MXFP4"}


def tensor_infos(path: str) -> list[dict]:
    """/api/show's ``tensors``: [{"name", "type", "shape"}] in file order (shape in ggml ne order)."""
    with open(path, "rb") as f:
        r = gguf._FileReader(f)  # the shared reader's primitives; ollama_deploy/gocompat/gguf.py stops before tensors
        _, n_tensors, n_kv = r.header()
        r.kv_section(n_kv, 0)
        out = []
        for _ in range(n_tensors):
            name = r.string()
            shape = [r.unpack("Q") for _ in range(r.unpack("I"))]  # in the file's byte order
            kind = r.unpack("I")
            r.unpack("Q")  # offset
            out.append({"name": name, "type": TENSOR_TYPES.get(kind, "unknown"), "shape": shape})
        return out
