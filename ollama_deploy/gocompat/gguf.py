"""Minimal GGUF metadata reader, standard library only: v1, v2 and v3, little- and big-endian, as
Ollama's own decoder (fs/ggml) takes them.

Shared by the deploy (the memory-budget check reads a model's metadata from
the first bytes of its registry blob, see ``ollama_deploy/control/modelinfo.py``) and by the
ollama-deploy *test double*, which ships a copy of this file as
``lib/ollama/test-double/gguf.py``.  Keep it stdlib-only for that reason.

Only the header and key/value section are read; tensor data is never touched.

* ``read_kv(path)`` reads a whole file.  Like Ollama's ``fs/ggml`` decoder it
  adds ``general.parameter_count`` (sum of tensor element counts) to the map.
* ``parse_kv_prefix(data)`` reads the key/value section from a bytes *prefix*
  of a file and raises ``NeedMoreBytes(n)`` when the prefix is too short, so a
  caller fetching the file over HTTP can ask for a larger range.
"""

from __future__ import annotations

import os
import struct

MAGIC = b"GGUF"
# fs/ggml reads the magic as a little-endian uint32: 0x46554747 ("GGUF") is a little-endian file,
# 0x47475546 ("FUGG") a big-endian one.
BYTE_ORDERS = {b"GGUF": "<", b"FUGG": ">"}
HEADER_SIZE = 24  # magic(4) + version(u32) + tensor count(u64) + kv count(u64); v1 counts are u32

# GGUF value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}


class GGUFError(ValueError):
    pass


class NeedMoreBytes(GGUFError):
    """The prefix ends inside the header/KV section; ``needed`` bytes (from the
    start of the file) are the least that could suffice.

    A subclass of GGUFError so code that treats a truncated file as "not GGUF"
    keeps working.  ``needed`` is a lower bound: a longer string or array may
    follow, so the caller may have to ask again.
    """

    def __init__(self, needed: int):
        super().__init__(f"truncated GGUF header: need at least {needed} bytes")
        self.needed = needed


def _shortest_float32(v: float) -> float:
    """The shortest decimal that reads back as the same float32 (Go prints float32 so)."""
    packed = struct.pack("<f", v)
    for digits in range(1, 10):
        c = float(f"{v:.{digits}g}")
        if struct.pack("<f", c) == packed:
            return c
    return v


class _Reader:
    """Value decoding shared by the file and the prefix reader (they differ in ``read``)."""

    order = "<"  # set from the magic by header()
    version = 3

    def read(self, n: int) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def skip(self, n: int) -> None:
        self.read(n)

    def unpack(self, fmt: str):
        return struct.unpack(self.order + fmt, self.read(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        n = self.unpack("Q")
        if self.version == 1:  # v1 strings count and end with a NUL (readGGUFV1String)
            data = bytes(self.read(n)) if n else b""
            if not data or data[-1:] != b"\0":
                raise GGUFError("invalid GGUF v1 string" + (" length: 0" if not n else " terminator"))
            return data[:-1].decode("utf-8", "replace")
        return bytes(self.read(n)).decode("utf-8", "replace")

    def value(self, vtype: int, max_array: int):
        if vtype == FLOAT32:
            return _shortest_float32(self.unpack("f"))
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            itype = self.unpack("I")
            count = self.unpack("Q")
            # Ollama keeps only arrays up to maxArraySize (negative: all).
            if 0 <= max_array < count:
                self._skip_array(itype, count)
                return []
            return [self.value(itype, max_array) for _ in range(count)]
        raise GGUFError(f"invalid type {vtype}")

    def _skip_array(self, itype: int, count: int) -> None:
        # A dropped array still has to be walked past; skip fixed-size items in
        # one step (a 150k-entry tokenizer array is then cheap) and strings by
        # their length prefixes, without decoding anything.
        if itype in _SCALAR:
            self.skip(count * struct.calcsize("<" + _SCALAR[itype]))
        elif itype == STRING:
            for _ in range(count):
                self.skip(self.unpack("Q"))
        elif itype == ARRAY:
            for _ in range(count):
                self._skip_array(self.unpack("I"), self.unpack("Q"))
        else:
            raise GGUFError(f"invalid type {itype}")

    def header(self) -> tuple[int, int, int]:
        """(version, n_tensors, n_kv) after checking magic and version."""
        order = BYTE_ORDERS.get(bytes(self.read(4)))
        if order is None:
            raise GGUFError("invalid file magic")
        self.order = order
        self.version = self.unpack("I")
        if self.version not in (1, 2, 3):
            raise GGUFError(f"unsupported GGUF version {self.version}")
        count = "I" if self.version == 1 else "Q"
        return self.version, self.unpack(count), self.unpack(count)

    def kv_section(self, n_kv: int, max_array: int) -> dict:
        kv: dict = {}
        for _ in range(n_kv):
            key = self.string()
            kv[key] = self.value(self.unpack("I"), max_array)
        return kv


class _FileReader(_Reader):
    def __init__(self, f):
        self.f = f

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise GGUFError("unexpected EOF")
        return b

    def skip(self, n: int) -> None:
        # Seeking past EOF succeeds silently, so compare with the file size first.
        pos = self.f.tell()
        if pos + n > os.fstat(self.f.fileno()).st_size:
            raise GGUFError("unexpected EOF")
        self.f.seek(n, 1)


class _PrefixReader(_Reader):
    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def read(self, n: int):
        end = self.pos + n
        if end > len(self.data):
            raise NeedMoreBytes(end)
        b = self.data[self.pos:end]
        self.pos = end
        return b

    def skip(self, n: int) -> None:
        self.read(n)


def read_kv(path: str, max_array: int = 1024) -> dict:
    """Return the GGUF key/value map of ``path`` (plus general.parameter_count).

    Arrays longer than ``max_array`` come back as ``[]`` (negative: keep all),
    as Ollama's decoder does.

    Example::

        kv = read_kv("/var/lib/ollama/models/blobs/sha256-...")
        kv["general.architecture"]          # -> "llama"
    """
    with open(path, "rb") as f:
        r = _FileReader(f)
        _, n_tensors, n_kv = r.header()
        kv = r.kv_section(n_kv, max_array)
        params = 0
        for _ in range(n_tensors):
            r.string()  # name
            n_dims = r.unpack("I")
            count = 1
            for _ in range(n_dims):
                count *= r.unpack("Q")
            r.unpack("I")  # type
            r.unpack("Q")  # offset
            params += count
        kv["general.parameter_count"] = params
        return kv


def parse_kv_prefix(data: bytes | bytearray | memoryview, max_array: int = 1024) -> dict:
    """Return the key/value map from ``data``, a prefix of a GGUF file.

    Raises ``NeedMoreBytes(n)`` when ``data`` ends before the KV section does
    (fetch at least ``n`` bytes and call again), ``GGUFError`` when it is not
    GGUF.  Tensor infos follow the KV section and are not read, so unlike
    ``read_kv`` there is no ``general.parameter_count``.

    Example::

        try:
            kv = parse_kv_prefix(first_2_mib)
        except NeedMoreBytes as e:
            ...  # fetch a range of at least e.needed bytes, retry
        kv["llama.block_count"]            # -> 32
    """
    if len(data) < HEADER_SIZE:
        # Say "not GGUF" as early as the bytes allow, else ask for the whole fixed header.
        if not any(bytes(data[:4]) == magic[:len(data)] for magic in BYTE_ORDERS):
            raise GGUFError("invalid file magic")
        raise NeedMoreBytes(HEADER_SIZE)
    r = _PrefixReader(data)
    _, _, n_kv = r.header()
    return r.kv_section(n_kv, max_array)


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


# -- what Ollama 0.32.15 concludes from the metadata --------------------------------------------

# Families the scheduler loads with one slot whatever OLLAMA_NUM_PARALLEL says (server/sched.go
# load, "model architecture does not currently support parallel requests").
SINGLE_SLOT_FAMILIES = frozenset({"mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next",
                                  "lfm2", "lfm2moe", "nemotron_h", "nemotron_h_moe", "nemotron_h_omni"})


def is_embedding(kv: dict) -> bool:
    """``<arch>.pooling_type`` present: an embedding model, without the completion capability, so
    /api/generate answers 400 (server/images.go ggufCapabilities)."""
    return f"{architecture(kv)}.pooling_type" in kv


def parallel_slots(num_parallel: int, family: str, embedding: bool) -> int:
    """The slots Ollama loads a model with: OLLAMA_NUM_PARALLEL (at least 1), but 1 for an embedding
    model and for the SINGLE_SLOT_FAMILIES (``family``: the config's model_family, as the arch).

    >>> parallel_slots(4, "llama", False), parallel_slots(4, "llama", True), parallel_slots(0, "qwen35", False)
    (4, 1, 1)
    """
    return 1 if embedding or family in SINGLE_SLOT_FAMILIES else max(num_parallel, 1)
