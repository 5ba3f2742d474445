"""Byte copy and compare over (buf, off) without allocating on MicroPython.

copy(dst, doff, src, soff, n)       dst[doff:doff+n] = src[soff:soff+n]
equal(a, aoff, b, boff, n) -> bool  a[aoff:aoff+n] == b[boff:boff+n]

IMPLEMENTATION names the one chosen at import ("viper", "bytecode" or "cpython").
Overlap: "viper" and "cpython" copy like memmove for any overlap, also between two memoryviews
of one buffer. "bytecode" (MicroPython without viper) handles overlap only when dst is src;
two different views of one buffer that overlap are unsupported there.
Callers keep offsets and lengths inside the buffers (the viper core does no bounds checks).
"""
import sys


def copy_bytecode(dst, doff, src, soff, n):
    """copy as a loop: allocation-free on MicroPython, slow."""
    if dst is src and doff > soff:
        for i in range(n - 1, -1, -1):
            dst[doff + i] = src[soff + i]
    else:
        for i in range(n):
            dst[doff + i] = src[soff + i]


def equal_bytecode(a, aoff, b, boff, n):
    """equal as a loop: allocation-free on MicroPython."""
    for i in range(n):
        if a[aoff + i] != b[boff + i]:
            return False
    return True


def copy_cpython(dst, doff, src, soff, n):
    """copy by slice assignment; the right-hand side is made a bytes copy first when src is a
    memoryview, which may share memory with dst."""
    if n <= 0:
        return
    part = src[soff:soff + n]
    if type(part) is memoryview:
        part = part.tobytes()
    dst[doff:doff + n] = part


def equal_cpython(a, aoff, b, boff, n):
    """equal by slice comparison."""
    return a[aoff:aoff + n] == b[boff:boff + n]


IMPLEMENTATION = "cpython"
copy = copy_cpython
equal = equal_cpython
if sys.implementation.name == "micropython":
    IMPLEMENTATION = "bytecode"
    copy = copy_bytecode
    equal = equal_bytecode
    if sys.implementation.version >= (1, 28):  # Thumb viper fixes (REFERENCE.md)
        try:
            from tcpip import _viper

            copy = _viper.copy
            equal = _viper.equal
            IMPLEMENTATION = "viper"
        except Exception:  # no viper emitter in this build, or an .mpy of another arch
            pass
