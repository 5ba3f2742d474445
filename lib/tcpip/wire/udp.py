"""UDP header (RFC 768): 8 bytes, checksum over an IPv4 pseudo header, 0 meaning "none sent".

Only what the stack uses; offsets, accessors and UdpRepr: tests/host/wirerep/udp.py.
"""
try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

from tcpip.checksum import checksum, pseudo_sum

_PROTO_UDP = const(17)


def emit_header(buf, off, sport, dport, length):
    """Ports and length; the checksum is left 0 (fill_checksum() sets it)."""
    buf[off] = sport >> 8
    buf[off + 1] = sport & 0xFF
    buf[off + 2] = dport >> 8
    buf[off + 3] = dport & 0xFF
    buf[off + 4] = length >> 8
    buf[off + 5] = length & 0xFF
    buf[off + 6] = 0
    buf[off + 7] = 0


def fill_checksum(buf, off, n, src, src_off, dst, dst_off):
    """Checksum the n-byte datagram at off (header + data) and store it. A computed 0 is sent as
    0xFFFF: 0 in the field means "no checksum" (RFC 768)."""
    buf[off + 6] = 0
    buf[off + 7] = 0
    c = checksum(buf, off, off + n, pseudo_sum(src, src_off, dst, dst_off, _PROTO_UDP, n))
    if c == 0:
        c = 0xFFFF
    buf[off + 6] = c >> 8
    buf[off + 7] = c & 0xFF
