"""Byte copy and compare over (buf, off) without allocating on MicroPython.

copy(dst, doff, src, soff, n)       dst[doff:doff+n] = src[soff:soff+n]
equal(a, aoff, b, boff, n) -> bool  a[aoff:aoff+n] == b[boff:boff+n]

IMPLEMENTATION names the one chosen at import ("viper", "bytecode" or "cpython").
Overlap: "viper" and "cpython" copy like memmove for any overlap, also between two memoryviews
of one buffer. "bytecode" (MicroPython without viper) handles overlap only when dst is src;
two different views of one buffer that overlap are unsupported there.
Callers keep offsets and lengths inside the buffers (the viper core does no bounds checks) and
pass buffers of bytes (the bytecode copy indexes items; tcpip.sockopt.byte_buffer turns a caller's
array into bytes first). "cpython" copies exactly n bytes or raises ValueError: it never resizes
dst (a slice assignment to a bytearray would, with a shorter source or one of wider items).
"""
import sys


IMPLEMENTATION = "cpython"
if sys.implementation.name == "micropython":
    IMPLEMENTATION = "bytecode"
    if sys.implementation.version >= (1, 28):  # docs/REFERENCE.md, "Viper"
        try:
            from tcpip import _viper

            copy = _viper.copy
            equal = _viper.equal
            IMPLEMENTATION = "viper"
        except Exception:  # no viper emitter in this build, or an .mpy of another arch
            pass
if IMPLEMENTATION != "viper":
    from tcpip import _pure

    if IMPLEMENTATION == "cpython":
        copy = _pure.copy_cpython
        equal = _pure.equal_cpython
    else:
        copy = _pure.copy_bytecode
        equal = _pure.equal_bytecode
