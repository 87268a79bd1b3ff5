#!/usr/bin/env python3
"""h5tree.py IN.h5 OUT.bin: an HDF5 file as a program for h5tree_build (tests/fuzz/h5tree.h,
which states the encoding), to seed the trace and results fuzz targets with files they accept.
Attributes and datasets of the kinds h5tree knows are kept (compound datasets, e.g. a results
file's /summary, are left out); datasets larger than H5TREE_MAX_ELEMS are declared, unwritten."""
import struct
import sys

import h5py
import numpy as np

NAMES = None


def names():
    global NAMES
    if NAMES is None:
        import os
        import re
        src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "h5tree.h")).read()
        body = src[src.index("h5tree_names[] = {"):src.index("};", src.index("h5tree_names[] = {"))]
        NAMES = re.findall(r'"([^"]*)"', body)
    return NAMES


def name(n):
    if n in names():
        return bytes([names().index(n)])
    b = n.encode()[:255]
    return bytes([255, len(b)]) + b


def attr(k, v):
    out = b"\x02" + name(k)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        b = v.encode()[:255]
        return out + b"\x02" + bytes([len(b)]) + b
    a = np.asarray(v)
    if a.ndim == 0:
        if a.dtype.kind in "iub":
            return out + b"\x00" + struct.pack("<q", int(a))
        if a.dtype == np.float32:
            return out + b"\x04" + struct.pack("<f", float(a))
        return out + b"\x01" + struct.pack("<d", float(a))
    a = a.ravel()[:255].astype("<i4")
    return out + b"\x03" + bytes([len(a)]) + a.tobytes()


KINDS = {np.dtype("<f2"): 0, np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3,
         np.dtype("<i8"): 4, np.dtype("u1"): 5}


def dataset(k, d):
    if d.dtype.kind == "O" or h5py.check_string_dtype(d.dtype):
        t = 6
    elif d.dtype.newbyteorder("<") in KINDS:
        t = KINDS[d.dtype.newbyteorder("<")]
    else:
        return b""
    # Float data (q, k, v, per-step series) is left unwritten (zeros): small seeds.
    nodata = t <= 2
    out = b"\x03" + name(k) + bytes([t | (128 if nodata else 0), len(d.shape)])
    out += b"".join(struct.pack("<I", x) for x in d.shape)
    if d.size > 65536 or nodata:
        return out
    if t == 6:
        for s in np.asarray(d[()]).ravel():
            b = (s if isinstance(s, bytes) else str(s).encode())[:255]
            out += bytes([len(b)]) + b
        return out
    return out + np.asarray(d[()]).astype(d.dtype.newbyteorder("<")).tobytes()


def group(g):
    out = b"".join(attr(k, v) for k, v in g.attrs.items())
    for k, v in g.items():
        if isinstance(v, h5py.Group):
            out += b"\x00" + name(k) + group(v) + b"\x01"
        else:
            out += dataset(k, v)  # (attributes of datasets are not encoded)
    return out


with h5py.File(sys.argv[1], "r") as f:
    open(sys.argv[2], "wb").write(group(f))
