"""Internet checksum (RFC 1071): sum16, fold, checksum, pseudo_sum.

One implementation is chosen at import and named in IMPLEMENTATION:
  "viper"    MicroPython >= 1.28 with the viper emitter (tcpip._viper): aligned 16-bit loads;
  "bytecode" other MicroPython: a plain loop that allocates nothing (tcpip._pure);
  "cpython"  CPython: int.from_bytes and a modulo, no Python-level loop (tcpip._pure).
All give identical results. Buffers may be bytes, bytearray or memoryview; callers keep
0 <= start <= end <= len(buf) (the viper core does no bounds checks).
"""
import sys

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# sum16(buf, start, end, acc=0): RFC 1071 one's complement sum of buf[start:end] as big-endian
# 16-bit words taken from start (an odd trailing byte padded with zero), plus acc, folded to
# 0..0xffff. Chunks chained through acc must be of even length except the last.
IMPLEMENTATION = "cpython"
if sys.implementation.name == "micropython":
    IMPLEMENTATION = "bytecode"
    # the viper core only from 1.28 on, the oldest firmware it is tested on (docs/REFERENCE.md, "Viper")
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

    def checksum(buf, start, end, acc=0) -> int:
        """The value to store in a header checksum field: ~sum16(...) & 0xffff."""
        return ~_vsum(start, end, buf, acc) & 0xFFFF

    sum16 = sum16_viper
else:
    from tcpip import _pure

    _sum = _pure.sum16_cpython if IMPLEMENTATION == "cpython" else _pure.sum16_bytecode
    sum16 = _sum

    def checksum(buf, start, end, acc=0) -> int:
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
