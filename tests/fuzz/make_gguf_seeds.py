#!/usr/bin/env python3
"""Writes tiny valid GGUF files into corpus/gguf/ as fuzzing seeds.

Built byte by byte here (not with tandem's writer) so the seeds also cross-check the reader.
Run: python3 tests/fuzz/make_gguf_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "gguf")


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def array(elem_type, items_payload, n):
    return struct.pack("<IQ", elem_type, n) + items_payload


def tensor_info(name, shape, ttype, offset):
    return gstr(name) + struct.pack("<I", len(shape)) + b"".join(
        struct.pack("<q", d) for d in shape) + struct.pack("<IQ", ttype, offset)


def gguf(kvs, tensors, data, alignment=32, version=3):
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    head += b"\0" * (-len(head) % alignment)
    return head + data


def write(name, blob):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)


def main():
    os.makedirs(OUT, exist_ok=True)
    # Metadata of every value type, no tensors.
    kvs = [
        kv("general.architecture", 8, gstr("deepseek2")),
        kv("a.u8", 0, struct.pack("<B", 7)), kv("a.i8", 1, struct.pack("<b", -7)),
        kv("a.u16", 2, struct.pack("<H", 700)), kv("a.i16", 3, struct.pack("<h", -700)),
        kv("a.u32", 4, struct.pack("<I", 70000)), kv("a.i32", 5, struct.pack("<i", -70000)),
        kv("a.f32", 6, struct.pack("<f", 0.5)), kv("a.bool", 7, b"\x01"),
        kv("a.u64", 10, struct.pack("<Q", 1 << 40)), kv("a.i64", 11, struct.pack("<q", -(1 << 40))),
        kv("a.f64", 12, struct.pack("<d", 2.5)),
        kv("tokenizer.ggml.tokens", 9, array(8, gstr("a") + gstr("b") + gstr("ab"), 3)),
        kv("a.nested", 9, array(9, array(5, struct.pack("<ii", 1, 2), 2) + array(5, b"", 0), 2)),
    ]
    write("metadata_only.gguf", gguf(kvs, [], b""))
    # Two tensors (f32 [4], q8_0 [32]) with a key or two, v2 header.
    tensors = [tensor_info("token_embd.weight", [4], 0, 0), tensor_info("blk.0.w", [32, 1], 8, 32)]
    data = struct.pack("<4f", 1, 2, 3, 4) + b"\0" * 16 + struct.pack("<e", 0.1) + bytes(range(32))
    write("two_tensors_v2.gguf", gguf([kv("general.architecture", 8, gstr("test"))], tensors, data, version=2))
    # Custom alignment.
    kvs = [kv("general.alignment", 4, struct.pack("<I", 64))]
    tensors = [tensor_info("a", [2, 2], 1, 0), tensor_info("b", [3], 0, 64)]
    data = b"\x00\x3c" * 4 + b"\0" * 56 + struct.pack("<3f", 1, 2, 3)
    write("aligned64.gguf", gguf(kvs, tensors, data, alignment=64))


if __name__ == "__main__":
    main()
