# Compares every F32 tensor of two safetensors files (python3 standard library only):
#   python3 tests/st_compare.py A B RTOL [SPREAD_A SPREAD_B]
# Each tensor of B must be within RTOL x max|A| of A, or, when a second pair is given (the same run at another
# thread count: the spread that the order of floating-point sums alone causes), within 4x that pair's difference
# for the tensor. Exit 1 naming the tensors that are not.
import array, json, struct, sys
def tensors(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, t in h.items():
        if k == "__metadata__" or t["dtype"] not in ("F32",): continue
        a = array.array("f"); o = t["data_offsets"]; a.frombytes(b[8 + n + o[0]:8 + n + o[1]]); out[k] = a
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2]); tol = float(sys.argv[3])
sa, sb = (tensors(sys.argv[4]), tensors(sys.argv[5])) if len(sys.argv) > 5 else ({}, {})
def rel(x, y):
    m = max((abs(v) for v in x), default=0); e = max((abs(p - q) for p, q in zip(x, y)), default=0)
    return e / m if m > 0 else e
worst = 0; bad = []
assert a.keys() == b.keys(), (a.keys() ^ b.keys())
for k in a:
    r = rel(a[k], b[k])
    spread = rel(sa[k], sb[k]) if k in sa and k in sb else 0
    worst = max(worst, r)
    if not (r <= tol or r <= 4 * spread): bad.append("%s %.3g (spread %.3g)" % (k, r, spread))
print("  %d tensors, worst rel diff %.3g" % (len(a), worst))
sys.exit("differ: " + ", ".join(bad[:5]) if bad else 0)
