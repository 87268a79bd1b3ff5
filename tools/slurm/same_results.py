#!/usr/bin/env python3
"""same_results.py A.h5 B.h5: exit 0 when two raasbench results files (sweep or eval) hold
the same results, 1 (naming the first difference) when not.

Every group, dataset, attribute and summary column is compared exactly (NaN equal to NaN),
except what measures time or place: names containing "latency" or "wall", and the root's
"created" and "host". A sharded sweep merged with `raasbench merge` must pass against the
same sweep run on one machine (tests/e2e_shard.sh, tests/e2e_slurm.sh)."""
import sys

import h5py
import numpy as np

SKIP_ATTRS = {"created", "host"}


def timed(name):
    return "latency" in name or "wall" in name


def same_values(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
        return False
    if x.dtype.names:  # a compound table: column by column, timed columns left out
        return set(x.dtype.names) == set(y.dtype.names) and all(
            same_values(x[c], y[c]) for c in x.dtype.names if not timed(c))
    if x.dtype.kind == "f":
        return np.array_equal(x, y, equal_nan=True)
    return np.array_equal(x, y)


def walk(a, b, path):
    ka = {k for k in a.attrs if k not in SKIP_ATTRS and not timed(k)}
    kb = {k for k in b.attrs if k not in SKIP_ATTRS and not timed(k)}
    if ka != kb:
        return f"{path or '/'}: attributes {sorted(ka ^ kb)} in one file only"
    for k in sorted(ka):
        if not same_values(a.attrs[k], b.attrs[k]):
            return f"{path or '/'}: attribute {k} differs"
    if isinstance(a, h5py.Dataset):
        return None if same_values(a[()], b[()]) else f"{path}: values differ"
    if set(a.keys()) != set(b.keys()):
        return f"{path or '/'}: members {sorted(set(a.keys()) ^ set(b.keys()))} in one file only"
    for k in sorted(a.keys()):
        if timed(k):
            continue
        if isinstance(a[k], h5py.Group) != isinstance(b[k], h5py.Group):
            return f"{path}/{k}: a group in one file only"
        why = walk(a[k], b[k], f"{path}/{k}")
        if why:
            return why
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: same_results.py A.h5 B.h5")
    with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
        why = walk(a, b, "")
    if why:
        print(f"differ: {why}")
        sys.exit(1)
    print(f"same: {sys.argv[1]} and {sys.argv[2]} (latency, wall times, created, host aside)")


if __name__ == "__main__":
    main()
