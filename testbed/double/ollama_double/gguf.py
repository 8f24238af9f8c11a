"""Minimal GGUF (v2/v3) metadata reader for the test double.

Reads the header and key/value section only; tensor data is never touched
(the double runs no model).  Like Ollama's ``fs/ggml`` decoder it adds
``general.parameter_count`` (sum of tensor element counts) to the KV map.
"""

from __future__ import annotations

import struct

MAGIC = b"GGUF"

# GGUF value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}


class GGUFError(ValueError):
    pass


def _shortest_float32(v: float) -> float:
    """The shortest decimal that reads back as the same float32 (Go prints float32 so)."""
    packed = struct.pack("<f", v)
    for digits in range(1, 10):
        c = float(f"{v:.{digits}g}")
        if struct.pack("<f", c) == packed:
            return c
    return v


class _Reader:
    def __init__(self, f):
        self.f = f

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise GGUFError("unexpected EOF")
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        return self.read(n).decode("utf-8", "replace")

    def value(self, vtype: int, max_array: int):
        if vtype == FLOAT32:
            return _shortest_float32(self.unpack("<f"))
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            itype = self.unpack("<I")
            count = self.unpack("<Q")
            items = [self.value(itype, max_array) for _ in range(count)]
            # Ollama keeps only arrays up to maxArraySize (negative: all).
            if 0 <= max_array < count:
                return []
            return items
        raise GGUFError(f"invalid type {vtype}")


def read_kv(path: str, max_array: int = 1024) -> dict:
    """Return the GGUF key/value map of ``path`` (plus general.parameter_count)."""
    with open(path, "rb") as f:
        r = _Reader(f)
        if r.read(4) != MAGIC:
            raise GGUFError("invalid file magic")
        version = r.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        n_tensors = r.unpack("<Q")
        n_kv = r.unpack("<Q")
        kv: dict = {}
        for _ in range(n_kv):
            key = r.string()
            kv[key] = r.value(r.unpack("<I"), max_array)
        params = 0
        for _ in range(n_tensors):
            r.string()  # name
            n_dims = r.unpack("<I")
            count = 1
            for _ in range(n_dims):
                count *= r.unpack("<Q")
            r.unpack("<I")  # type
            r.unpack("<Q")  # offset
            params += count
        kv["general.parameter_count"] = params
        return kv


def architecture(kv: dict) -> str:
    return str(kv.get("general.architecture", "unknown"))


def arch_uint(kv: dict, key: str, default: int = 0) -> int:
    """Read ``<arch>.<key>``; per-layer arrays give their max (HeadCountMax)."""
    v = kv.get(f"{architecture(kv)}.{key}", default)
    if isinstance(v, list):
        return max(v) if v else default
    return int(v)


def arch_uint_min(kv: dict, key: str, default: int = 0) -> int:
    """Like arch_uint, but per-layer arrays give their min (HeadCountKVMin)."""
    v = kv.get(f"{architecture(kv)}.{key}", default)
    if isinstance(v, list):
        return min(v) if v else default
    return int(v)
