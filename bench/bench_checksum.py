"""Internet checksum of one 1500-byte buffer: every sum16 implementation against a plain copy.

    micropython bench/bench_checksum.py      (unix port: viper and bytecode)
    python3 bench/bench_checksum.py          (CPython: int.from_bytes and bytecode)

Each row is the best of 5 runs of a loop calibrated to take at least 0.2 s, minus the same loop
run empty. The copy row is `dst[:] = src` of the same buffer, the yardstick for the others.
"""
import sys

try:
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.insert(0, _here + "/../lib")
except NameError:
    pass

from tcpip import checksum, mem  # noqa: E402
from tcpip import _pure

SIZE = 1500
MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    import time

    def now_us():
        return time.ticks_us()

    def elapsed_us(t0):
        return time.ticks_diff(time.ticks_us(), t0)
else:
    import time

    def now_us():
        return time.perf_counter_ns() // 1000

    def elapsed_us(t0):
        return time.perf_counter_ns() // 1000 - t0


def loop_empty(n, buf, dst):
    t0 = now_us()
    for _ in range(n):
        pass
    return elapsed_us(t0)


def loop_copy(n, buf, dst):
    t0 = now_us()
    for _ in range(n):
        dst[:] = buf
    return elapsed_us(t0)


def make_loop(f):
    def loop(n, buf, dst):
        t0 = now_us()
        for _ in range(n):
            f(buf, 0, SIZE, 0)
        return elapsed_us(t0)

    return loop


def make_copy_loop(f):
    def loop(n, buf, dst):
        t0 = now_us()
        for _ in range(n):
            f(dst, 0, buf, 0, SIZE)
        return elapsed_us(t0)

    return loop


def per_call_us(loop, buf, dst):
    n = 16
    while True:
        t = loop(n, buf, dst)
        if t >= 200000 or n >= 1 << 24:
            break
        n *= 2
    best = None
    for _ in range(5):
        t = loop(n, buf, dst) - loop_empty(n, buf, dst)
        if best is None or t < best:
            best = t
    if best < 0:
        best = 0
    return best / n


def main():
    buf = bytearray(SIZE)
    for i in range(SIZE):
        buf[i] = (i * 131 + 7) & 0xFF
    dst = bytearray(SIZE)
    rows = [("copy dst[:] = src", loop_copy)]
    if mem.IMPLEMENTATION != "cpython":
        rows.append(("mem.copy (" + mem.IMPLEMENTATION + ")", make_copy_loop(mem.copy)))
    if checksum.IMPLEMENTATION == "viper":
        rows.append(("sum16 viper", make_loop(checksum.sum16_viper)))
    if not MICROPYTHON:
        rows.append(("sum16 cpython", make_loop(_pure.sum16_cpython)))
    rows.append(("sum16 bytecode", make_loop(_pure.sum16_bytecode)))
    want = _pure.sum16_bytecode(buf, 0, SIZE, 0)
    impl = sys.implementation
    print("%s %s, checksum.IMPLEMENTATION = %s, %d bytes" % (
        impl.name, ".".join(str(x) for x in impl.version[:3]), checksum.IMPLEMENTATION, SIZE))
    print("%-24s %12s %10s %12s" % ("operation", "us/call", "MB/s", "x copy"))
    copy_us = None
    for name, loop in rows:
        us = per_call_us(loop, buf, dst)
        if copy_us is None:
            copy_us = us
        mbs = SIZE / us if us > 0 else 0.0
        ratio = us / copy_us if copy_us > 0 else 0.0
        print("%-24s %12.3f %10.1f %12.1f" % (name, us, mbs, ratio))
    for name, f in (("sum16", checksum.sum16), ("sum16_bytecode", _pure.sum16_bytecode)):
        assert f(buf, 0, SIZE, 0) == want, name


main()
