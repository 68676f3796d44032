#!/usr/bin/env python3
"""An independent reader and float64 dequantizer for GGUF files, in plain Python (no numpy), used to make the
reference data that tests/test_gguf.c checks k2c's C dequantizers against.

    python3 tests/gguf_ref.py dump FILE.gguf            metadata and tensor table
    python3 tests/gguf_ref.py seeds DIR                  fuzz seeds (fuzz/corpus/gguf)
    python3 tests/gguf_ref.py make OUT.safetensors [GOLDEN_DIR...]   reference blocks (see make_reference)
    (tests/data/golden/gguf/dequant_ref.safetensors was made with
     python3 tests/gguf_ref.py make tests/data/golden/gguf/dequant_ref.safetensors tests/data/golden/gguf/gguf-*)

The block layouts are the public facts of the GGUF format (ggml's block_q4_0, block_q4_K, ...); this file
decodes them from their description, element by element, in float64 (Python floats), so it shares no code
and no arithmetic order with the C kernels."""
import json
import random
import struct
import sys

GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
              18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
              25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 133: "Q6_0"}
# (elements per block, bytes per block)
LAYOUT = {"F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
          "Q5_1": (32, 24), "Q8_0": (32, 34), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144),
          "Q5_K": (256, 176), "Q6_K": (256, 210), "IQ4_NL": (32, 18), "IQ4_XS": (256, 136), "Q6_0": (32, 26)}
IQ4_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def f16(b, o):
    return struct.unpack_from("<e", b, o)[0]


def bf16(b, o):
    return struct.unpack("<f", b"\0\0" + bytes(b[o:o + 2]))[0]


# ------------------------------------------------------------------ blocks -> floats (float64)
def block_values(t, b):
    """The elements of one block of type t (bytes b) as Python floats."""
    if t == "F32":
        return [struct.unpack_from("<f", b, 0)[0]]
    if t == "F16":
        return [f16(b, 0)]
    if t == "BF16":
        return [bf16(b, 0)]
    if t in ("Q4_0", "IQ4_NL"):
        d = f16(b, 0)
        qs = b[2:18]
        lo = [q & 15 for q in qs]
        hi = [q >> 4 for q in qs]
        if t == "Q4_0":
            return [d * (q - 8) for q in lo + hi]
        return [d * IQ4_VALUES[q] for q in lo + hi]
    if t == "Q4_1":
        d, m = f16(b, 0), f16(b, 2)
        qs = b[4:20]
        return [d * (q & 15) + m for q in qs] + [d * (q >> 4) + m for q in qs]
    if t == "Q6_0":
        # ik_llama.cpp's block_q6_0: d, qh[8], qs[16]. Element e: its 4 low bits are nibble e // 16 of
        # qs[e % 16]; its 2 high bits sit in qh[e % 8] at bit 4 * ((e % 16) // 8) + 2 * (e // 16).
        d = f16(b, 0)
        qh, qs = b[2:10], b[10:26]
        out = []
        for e in range(32):
            j, half = e % 16, e // 16
            low = (qs[j] >> (4 * half)) & 15
            high = (qh[j % 8] >> (4 * (j // 8) + 2 * half)) & 3
            out.append(d * ((low + 16 * high) - 32))
        return out
    if t in ("Q5_0", "Q5_1"):
        if t == "Q5_0":
            d, m, o = f16(b, 0), None, 2
        else:
            d, m, o = f16(b, 0), f16(b, 2), 4
        qh = struct.unpack_from("<I", b, o)[0]
        qs = b[o + 4:o + 20]
        q = [(qs[j] & 15) | (((qh >> j) & 1) << 4) for j in range(16)] + \
            [(qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4) for j in range(16)]
        if m is None:
            return [d * (v - 16) for v in q]
        return [d * v + m for v in q]
    if t == "Q8_0":
        d = f16(b, 0)
        return [d * struct.unpack_from("<b", b, 2 + j)[0] for j in range(32)]
    if t == "Q2_K":
        sc, qs, d, dmin = b[0:16], b[16:80], f16(b, 80), f16(b, 82)
        out = []
        # element i: 128-half h, bit pair p (shift 2p), lane l in 0..31; scale index = 8h + 2p + (l >= 16)
        for h in range(2):
            for p in range(4):
                for l in range(32):
                    s = sc[8 * h + 2 * p + l // 16]
                    q = (qs[32 * h + l] >> (2 * p)) & 3
                    out.append(d * (s & 15) * q - dmin * (s >> 4))
        return out
    if t == "Q3_K":
        hm, qs, raw, d = b[0:32], b[32:96], b[96:108], f16(b, 108)
        # 16 six-bit scales: low 4 bits from raw[0..7] nibbles, high 2 bits from raw[8..11]
        scales = []
        for i in range(16):
            low = (raw[i] & 15) if i < 8 else (raw[i - 8] >> 4)
            high = (raw[8 + i % 4] >> (2 * (i // 4))) & 3
            scales.append((low | (high << 4)) - 32)
        out = []
        for h in range(2):
            for p in range(4):
                for l in range(32):
                    s = scales[8 * h + 2 * p + l // 16]
                    q = (qs[32 * h + l] >> (2 * p)) & 3
                    if not (hm[l] >> (4 * h + p)) & 1:
                        q -= 4
                    out.append(d * s * q)
        return out
    if t in ("Q4_K", "Q5_K"):
        d, dmin, raw = f16(b, 0), f16(b, 2), b[4:16]

        def scale_min(j):
            if j < 4:
                return raw[j] & 63, raw[j + 4] & 63
            return (raw[j + 4] & 15) | ((raw[j - 4] >> 6) << 4), (raw[j + 4] >> 4) | ((raw[j] >> 6) << 4)
        if t == "Q4_K":
            qh, qs = None, b[16:144]
        else:
            qh, qs = b[16:48], b[48:176]
        out = []
        for g in range(8):                   # sub-block of 32: byte chunk g // 2, low or high nibble
            s, m = scale_min(g)
            for l in range(32):
                byte = qs[32 * (g // 2) + l]
                q = (byte & 15) if g % 2 == 0 else (byte >> 4)
                if qh is not None:
                    q += 16 * ((qh[l] >> g) & 1)
                out.append(d * s * q - dmin * m)
        return out
    if t == "Q6_K":
        ql, qh, sc, d = b[0:128], b[128:192], b[192:208], f16(b, 208)
        out = [0.0] * 256
        for h in range(2):
            for l in range(32):
                for k in range(4):            # the four 32-element quarters of this 128-element half
                    low = ql[64 * h + l + 32 * (k % 2)]
                    low = (low & 15) if k < 2 else (low >> 4)
                    high = (qh[32 * h + l] >> (2 * k)) & 3
                    q = (low | (high << 4)) - 32
                    s = struct.unpack_from("<b", sc, 8 * h + l // 16 + 2 * k)[0]
                    out[128 * h + 32 * k + l] = d * s * q
        return out
    if t == "IQ4_XS":
        d = f16(b, 0)
        sh = struct.unpack_from("<H", b, 2)[0]
        sl, qs = b[4:8], b[8:136]
        out = []
        for g in range(8):
            ls = ((sl[g // 2] >> (4 * (g % 2))) & 15) | (((sh >> (2 * g)) & 3) << 4)
            dl = d * (ls - 32)
            q = qs[16 * g:16 * g + 16]
            out += [dl * IQ4_VALUES[v & 15] for v in q] + [dl * IQ4_VALUES[v >> 4] for v in q]
        return out
    raise ValueError("type %s not decoded here" % t)


def row_values(t, data, cols):
    n, nb = LAYOUT[t]
    out = []
    for i in range(cols // n):
        out += block_values(t, data[i * nb:(i + 1) * nb])
    return out


# ------------------------------------------------------------------ the file
class Reader:
    def __init__(self, path):
        self.b = open(path, "rb").read()
        self.o = 0
        magic, self.version = struct.unpack_from("<4sI", self.b, 0)
        assert magic == b"GGUF", "not a GGUF file"
        self.o = 8
        nt, nkv = self.u64(), self.u64()
        self.kv = {}
        for _ in range(nkv):
            k = self.str()
            self.kv[k] = self.value(self.u32())
        self.tensors = {}
        for _ in range(nt):
            name = self.str()
            nd = self.u32()
            ne = [self.u64() for _ in range(nd)]
            t = self.u32()
            off = self.u64()
            self.tensors[name] = (GGML_TYPES.get(t, str(t)), ne, off)
        al = self.kv.get("general.alignment", 32)
        self.data = (self.o + al - 1) // al * al

    def u32(self):
        v = struct.unpack_from("<I", self.b, self.o)[0]
        self.o += 4
        return v

    def u64(self):
        v = struct.unpack_from("<Q", self.b, self.o)[0]
        self.o += 8
        return v

    def str(self):
        n = self.u64()
        s = self.b[self.o:self.o + n].decode("utf-8", "replace")
        self.o += n
        return s

    def value(self, t):
        fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
        if t in fmts:
            v = struct.unpack_from(fmts[t], self.b, self.o)[0]
            self.o += struct.calcsize(fmts[t])
            return v
        if t == 8:
            return self.str()
        if t == 9:
            et, n = self.u32(), self.u64()
            return [self.value(et) for _ in range(n)]
        raise ValueError("metadata type %d" % t)

    def tensor_rows(self, name, r0, nrows):
        t, ne, off = self.tensors[name]
        n, nb = LAYOUT[t]
        rb = ne[0] // n * nb
        base = self.data + off + r0 * rb
        return [row_values(t, self.b[base + i * rb:base + (i + 1) * rb], ne[0]) for i in range(nrows)], \
            self.b[base:base + nrows * rb]


def dump(path):
    r = Reader(path)
    print("version", r.version, "tensors", len(r.tensors), "data at", r.data)
    for k, v in r.kv.items():
        if isinstance(v, list) and len(v) > 8:
            v = "[%d items: %s ...]" % (len(v), v[:4])
        print("  %s = %r" % (k, v))
    for name, (t, ne, off) in r.tensors.items():
        print("  %-32s %-7s ne=%s off=%d" % (name, t, ne, off))


# ------------------------------------------------------------------ reference data
def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    hdr, off = {}, 0
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in tensors:
            f.write(t[3])


def random_block(t, rng):
    """Random bytes for one block, with finite half-precision scales of sensible size."""
    n, nb = LAYOUT[t]
    b = bytearray(rng.getrandbits(8) for _ in range(nb))

    def put_f16(o, lo, hi):
        struct.pack_into("<e", b, o, rng.uniform(lo, hi) * rng.choice((1, -1)))
    if t == "F32":
        struct.pack_into("<f", b, 0, rng.uniform(-4, 4))
    elif t == "F16":
        put_f16(0, 0, 4)
    elif t == "BF16":
        b[0:2] = struct.pack("<f", rng.uniform(-4, 4))[2:4]
    elif t in ("Q4_0", "Q5_0", "Q8_0", "IQ4_NL", "Q6_0"):
        put_f16(0, 1e-3, 0.1)
    elif t in ("Q4_1", "Q5_1"):
        put_f16(0, 1e-3, 0.1)
        put_f16(2, 0, 0.5)
    elif t in ("Q4_K", "Q5_K"):
        put_f16(0, 1e-4, 0.01)
        put_f16(2, 1e-4, 0.01)
    elif t == "Q2_K":
        put_f16(80, 1e-3, 0.05)
        put_f16(82, 1e-3, 0.05)
    elif t == "Q3_K":
        put_f16(108, 1e-4, 0.01)
    elif t == "Q6_K":
        put_f16(208, 1e-4, 0.01)
    elif t == "IQ4_XS":
        put_f16(0, 1e-4, 0.01)
    return bytes(b)


def make_reference(out, golden=()):
    """For every type: `<type>.raw` (U8, 4 rows of 512 elements as stored) and `<type>.ref` (F64 [4, 512]); for
    every golden GGUF (a folder NAME with model.gguf) and every type in it, the first two rows of its first tensor
    of that type: `NAME/<tensor>` (F64 [2, cols])."""
    rng = random.Random(20240613)
    tensors = []
    for d in golden:
        r = Reader(d + "/model.gguf")
        seen = set()
        for name, (t, ne, off) in sorted(r.tensors.items()):
            if t in seen or t not in LAYOUT or len(ne) < 2:
                continue
            seen.add(t)
            rows, _ = r.tensor_rows(name, 0, 2)
            flat = [v for row in rows for v in row]
            tensors.append((d.rstrip("/").split("/")[-1] + "/" + name, "F64", [2, ne[0]],
                            struct.pack("<%dd" % len(flat), *flat)))
    for t in ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
              "Q6_K", "IQ4_NL", "IQ4_XS", "Q6_0"):
        n, nb = LAYOUT[t]
        rows, cols = 4, 512
        raw = b"".join(random_block(t, rng) for _ in range(rows * cols // n))
        vals = []
        rb = cols // n * nb
        for r in range(rows):
            vals += row_values(t, raw[r * rb:(r + 1) * rb], cols)
        tensors.append((t + ".raw", "U8", [len(raw)], raw))
        tensors.append((t + ".ref", "F64", [rows, cols], struct.pack("<%dd" % len(vals), *vals)))
    write_safetensors(out, tensors)


# ------------------------------------------------------------------ writing (fuzz seeds)
def _value(t, v):
    fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    if t == 8:
        b = v.encode() if isinstance(v, str) else v
        return struct.pack("<Q", len(b)) + b
    if t == 9:
        at, items = v
        return struct.pack("<IQ", at, len(items)) + b"".join(_value(at, x) for x in items)
    return struct.pack(fmts[t], v)


def write_gguf(kv, tensors, version=3, align=32):
    """kv: list of (key, type, value) (arrays: (element type, [values])); tensors: list of (name, ne, ggml type
    number, bytes). Returns the file image."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for k, t, v in kv:
        out += _value(8, k) + struct.pack("<I", t) + _value(t, v)
    off, data = 0, b""
    for name, ne, t, raw in tensors:
        out += _value(8, name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", t, off)
        data += raw + b"\0" * ((-len(raw)) % align)
        off = len(data)
    out += b"\0" * ((-len(out)) % align)
    return out + data


def make_seeds(d):
    """Small GGUF images for the fuzz harness (fuzz/corpus/gguf): every metadata type, the deepseek2 metadata of a
    golden file, and tensors of several ggml types."""
    import os
    rng = random.Random(7)
    os.makedirs(d, exist_ok=True)
    every = [("general.architecture", 8, "deepseek2"), ("general.alignment", 4, 32), ("t.u8", 0, 200), ("t.i8", 1, -5),
             ("t.u16", 2, 60000), ("t.i16", 3, -300), ("t.u32", 4, 7), ("t.i32", 5, -7), ("t.f32", 6, 0.5),
             ("t.bool", 7, True), ("t.u64", 10, 1 << 40), ("t.i64", 11, -(1 << 40)), ("t.f64", 12, 0.25),
             ("t.strs", 9, (8, ["a", "", "xyz"])), ("t.ints", 9, (5, [1, -2, 3])), ("t.empty", 9, (4, []))]
    ts = [("a.weight", [32, 2], 0, b"".join(struct.pack("<f", i * 0.5) for i in range(64))),
          ("b.weight", [32, 2], 8, b"".join(random_block("Q8_0", rng) for _ in range(2))),
          ("c.weight", [256, 1, 1], 12, random_block("Q4_K", rng)),
          ("d.weight", [256], 14, random_block("Q6_K", rng))]
    open(d + "/seed-every-type", "wb").write(write_gguf(every, ts))
    open(d + "/seed-v2-align64", "wb").write(write_gguf(every[:1] + [("general.alignment", 4, 64)], ts[:2], 2, 64))
    open(d + "/seed-no-tensors", "wb").write(write_gguf(every, []))
    here = os.path.dirname(os.path.abspath(__file__))
    r = Reader(here + "/data/golden/gguf/gguf-Q4_K_M/model.gguf")
    types = {bool: 7, int: 4, float: 6, str: 8}
    kv = []
    for k, v in r.kv.items():
        if isinstance(v, list):
            kv.append((k, 9, (8 if v and isinstance(v[0], str) else 5, v[:16])))
        else:
            t = types[type(v)]
            kv.append((k, t, v))
    open(d + "/seed-deepseek2", "wb").write(write_gguf(kv, ts[:1]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "seeds":
        make_seeds(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "make":
        make_reference(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
