"""The GGUF reader takes what Ollama's fs/ggml decoder takes: versions 1-3, little- and big-endian."""
import struct

import pytest

from ollama_deploy.gocompat.gguf import ARRAY, STRING, UINT32, GGUFError, parse_kv_prefix, read_kv

KV = [("general.architecture", STRING, "llama"), ("llama.block_count", UINT32, 2),
      ("llama.attention.head_count_kv", ARRAY, [2, 1])]
TENSORS = [("token_embd.weight", (64, 300)), ("output_norm.weight", (64,))]


def gguf_file(version: int, order: str) -> bytes:
    """A GGUF header as fs/ggml reads it: v1 has u32 counts and NUL-terminated strings."""
    def pack(fmt, *v):
        return struct.pack(order + fmt, *v)

    def string(s):
        b = s.encode() + (b"\0" if version == 1 else b"")
        return pack("Q", len(b)) + b

    count = "I" if version == 1 else "Q"
    out = (b"GGUF" if order == "<" else b"FUGG") + pack("I", version) + pack(count, len(TENSORS)) + pack(count, len(KV))
    for key, vtype, value in KV:
        out += string(key) + pack("I", vtype)
        if vtype == STRING:
            out += string(value)
        elif vtype == UINT32:
            out += pack("I", value)
        else:
            out += pack("I", UINT32) + pack("Q", len(value)) + b"".join(pack("I", v) for v in value)
    for name, dims in TENSORS:
        out += string(name) + pack("I", len(dims)) + b"".join(pack("Q", d) for d in dims) + pack("I", 1) + pack("Q", 0)
    return out


EXPECTED = {"general.architecture": "llama", "llama.block_count": 2, "llama.attention.head_count_kv": [2, 1]}


@pytest.mark.parametrize("version, order", [(1, "<"), (2, "<"), (3, "<"), (1, ">"), (3, ">")])
def test_every_version_and_byte_order_reads_the_same(tmp_path, version, order):
    data = gguf_file(version, order)
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    assert read_kv(str(path)) == {**EXPECTED, "general.parameter_count": 64 * 300 + 64}
    assert parse_kv_prefix(data) == EXPECTED


def test_a_v1_string_without_its_terminator_is_refused(tmp_path):
    data = bytearray(gguf_file(1, "<"))
    at = data.index(b"general.architecture\0") + len("general.architecture")
    data[at] = ord("X")  # the NUL that ends the key
    with pytest.raises(GGUFError, match="invalid GGUF v1 string terminator"):
        parse_kv_prefix(bytes(data))
