# Reads safetensors with the python3 standard library only (a JSON header, then raw little-endian arrays).
#   python3 tests/st_check.py ids FILE NAME                 -> the I32 tensor NAME as "1,2,3"
#   python3 tests/st_check.py close WANT GOT NAME [RTOL]   -> exit 1 unless tensor NAME of GOT has WANT's shape
#                                                             and max |got - want| <= RTOL * max |want| (default 1e-4)
import array, json, struct, sys

def load(path, name):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8:8 + n])[name]
    a = array.array({"F32": "f", "I32": "i"}[t["dtype"]])
    o = t["data_offsets"]
    a.frombytes(b[8 + n + o[0]:8 + n + o[1]])
    if sys.byteorder != "little":
        a.byteswap()
    return t["shape"], a

if sys.argv[1] == "ids":
    print(",".join(map(str, load(sys.argv[2], sys.argv[3])[1])))
elif sys.argv[1] == "close":
    ws, want = load(sys.argv[2], sys.argv[4])
    gs, got = load(sys.argv[3], sys.argv[4])
    rtol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    if gs != ws:
        sys.exit("shape %s, reference %s" % (gs, ws))
    m = max(abs(x) for x in want)
    e = max(abs(a - b) for a, b in zip(got, want))
    if not e <= rtol * m:   # also catches NaN
        sys.exit("max abs err %g > %g x max |ref| %g" % (e, rtol, m))
    print("  %s %s: max abs err %.3g (max |ref| %.3g)" % (sys.argv[4], gs, e, m))
else:
    sys.exit("usage: st_check.py ids FILE NAME | close WANT GOT NAME [RTOL]")
