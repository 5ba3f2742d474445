"""UDP header (RFC 768), test side: tcpip.wire.udp (emit_header, fill_checksum) plus offsets,
accessors, is_checksum_valid and UdpRepr."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.checksum import checksum, pseudo_sum
from tcpip.wire.udp import *  # noqa: F401,F403
from tcpip.wire.udp import emit_header, fill_checksum
from wirerep import check_span

HEADER_LEN = const(8)
# Field offsets, relative to the start of the header (RFC 768 "Format").
SRC_PORT = const(0)
DST_PORT = const(2)
LENGTH = const(4)  # header plus data
CHECKSUM = const(6)
_PROTO_UDP = const(17)


def get_src_port(buf, off):
    return buf[off] << 8 | buf[off + 1]


def get_dst_port(buf, off):
    return buf[off + 2] << 8 | buf[off + 3]


def get_length(buf, off):
    return buf[off + 4] << 8 | buf[off + 5]


def get_checksum(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]


def set_src_port(buf, off, value):
    buf[off] = value >> 8
    buf[off + 1] = value & 0xFF


def set_dst_port(buf, off, value):
    buf[off + 2] = value >> 8
    buf[off + 3] = value & 0xFF


def set_length(buf, off, value):
    buf[off + 4] = value >> 8
    buf[off + 5] = value & 0xFF


def set_checksum(buf, off, value):
    buf[off + 6] = value >> 8
    buf[off + 7] = value & 0xFF


def is_checksum_valid(buf, off, n, src, src_off, dst, dst_off):
    """True when the field is 0 (none sent) or the sum over pseudo header and datagram checks."""
    if buf[off + 6] == 0 and buf[off + 7] == 0:
        return True
    return checksum(buf, off, off + n, pseudo_sum(src, src_off, dst, dst_off, _PROTO_UDP, n)) == 0


class UdpRepr:
    """src_port, dst_port and payload_len of one datagram (the data follows the 8-byte header)."""

    def __init__(self, src_port, dst_port, payload_len=0):
        self.src_port = src_port
        self.dst_port = dst_port
        self.payload_len = payload_len

    @classmethod
    def parse(cls, buf, off, n, src=None, dst=None):
        """n: bytes available (the IP payload; may exceed the UDP length by link padding).
        With src and dst (4-byte buffers) the checksum is verified too."""
        check_span(buf, off, n, HEADER_LEN, "udp")
        length = get_length(buf, off)
        if length < HEADER_LEN:
            raise ValueError("udp: length %d below 8" % length)
        if length > n:
            raise ValueError("udp: length %d exceeds the %d bytes present" % (length, n))
        if src is not None and not is_checksum_valid(buf, off, length, src, 0, dst, 0):
            raise ValueError("udp: bad checksum")
        return cls(get_src_port(buf, off), get_dst_port(buf, off), length - HEADER_LEN)

    def buffer_len(self):
        """Header plus payload: the whole datagram."""
        return HEADER_LEN + self.payload_len

    def emit(self, buf, off, src=None, dst=None):
        """Write the header. With src and dst also fill the checksum over the payload_len bytes
        that must already follow the header; without them the checksum stays 0 (none)."""
        n = HEADER_LEN + self.payload_len
        if n > 0xFFFF:
            raise ValueError("udp: payload length %d too large" % self.payload_len)
        emit_header(buf, off, self.src_port, self.dst_port, n)
        if src is not None:
            fill_checksum(buf, off, n, src, 0, dst, 0)

    def __eq__(self, other):
        return (isinstance(other, UdpRepr) and self.src_port == other.src_port
                and self.dst_port == other.dst_port and self.payload_len == other.payload_len)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "UdpRepr(src_port=%d, dst_port=%d, payload_len=%d)" % (
            self.src_port, self.dst_port, self.payload_len)
