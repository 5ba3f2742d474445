"""Internet checksum (RFC 1071): sum16, fold, checksum, pseudo_sum.

One implementation is chosen at import and named in IMPLEMENTATION:
  "viper"    MicroPython >= 1.28 with the viper emitter (tcpip._viper): aligned 16-bit loads;
  "bytecode" other MicroPython: a plain loop that allocates nothing;
  "cpython"  CPython: int.from_bytes and a modulo, no Python-level loop.
All give identical results. Buffers may be bytes, bytearray or memoryview; callers keep
0 <= start <= end <= len(buf) (the viper core does no bounds checks).
"""
import sys

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BLOCK = const(16384)  # bytecode loop folds every 16 KiB so sums stay small ints on rp2


def fold(acc):
    """Fold a nonnegative sum to 16 bits with end-around carry (RFC 1071 2(D)); 0 only for 0."""
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def sum16_bytecode(buf, start, end, acc=0):
    """sum16 as a plain loop (any runtime; the MicroPython fallback)."""
    n = end - start
    if n <= 0:
        return fold(acc)
    s = fold(acc)
    stop = start + (n & ~1)  # end of the whole 16-bit words
    i = start
    while i < stop:
        blk = i + _BLOCK
        if blk > stop:
            blk = stop
        for j in range(i, blk, 2):
            s += (buf[j] << 8) + buf[j + 1]
        s = (s & 0xFFFF) + (s >> 16)
        i = blk
    if n & 1:
        s += buf[stop] << 8  # RFC 1071 4.1: odd trailing byte padded with a zero byte
    return fold(s)


def sum16_cpython(buf, start, end, acc=0):
    """sum16 via int.from_bytes: 2**16 == 1 (mod 0xffff), so the big number is congruent to the
    sum of its 16-bit words. The one's complement sum is 0 only when every word (and acc) is 0;
    any other multiple of 0xffff is 0xffff."""
    n = end - start
    if n <= 0:
        return fold(acc)
    v = int.from_bytes(buf[start:end], "big")
    if n & 1:
        v <<= 8  # pad the odd trailing byte with zero
    v += acc
    if v == 0:
        return 0
    return v % 0xFFFF or 0xFFFF


# sum16(buf, start, end, acc=0): RFC 1071 one's complement sum of buf[start:end] as big-endian
# 16-bit words taken from start (an odd trailing byte padded with zero), plus acc, folded to
# 0..0xffff. Chunks chained through acc must be of even length except the last.
IMPLEMENTATION = "cpython"
sum16 = sum16_cpython
if sys.implementation.name == "micropython":
    IMPLEMENTATION = "bytecode"
    sum16 = sum16_bytecode
    # Thumb viper code generation is fixed from 1.28 on (REFERENCE.md).
    if sys.implementation.version >= (1, 28):
        try:
            from tcpip import _viper

            _vsum = _viper.sum16  # argument order (start, end, buf, acc), no defaults
            IMPLEMENTATION = "viper"
        except Exception:  # no viper emitter in this build, or an .mpy of another arch
            pass

if IMPLEMENTATION == "viper":
    def sum16_viper(buf, start, end, acc=0):
        """sum16 through the viper core."""
        return _vsum(start, end, buf, acc)

    def checksum(buf, start, end, acc=0):
        """The value to store in a header checksum field: ~sum16(...) & 0xffff."""
        return ~_vsum(start, end, buf, acc) & 0xFFFF

    sum16 = sum16_viper
else:
    _sum = sum16

    def checksum(buf, start, end, acc=0):
        """The value to store in a header checksum field: ~sum16(...) & 0xffff."""
        return ~_sum(buf, start, end, acc) & 0xFFFF


def pseudo_sum(src, src_off, dst, dst_off, proto, length):
    """Folded sum of the IPv4 pseudo header (RFC 9293 3.1, RFC 768): source and destination
    address (4 bytes each at the given offsets), zero, protocol, TCP/UDP length."""
    s = (
        (src[src_off] << 8) + src[src_off + 1] + (src[src_off + 2] << 8) + src[src_off + 3]
        + (dst[dst_off] << 8) + dst[dst_off + 1] + (dst[dst_off + 2] << 8) + dst[dst_off + 3]
        + proto + length
    )
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)
