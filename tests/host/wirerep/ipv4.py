"""IPv4 header (RFC 791), test side: tcpip.wire.ipv4 (check, emit_header, address helpers) plus
offsets, accessors and Ipv4Repr."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.checksum import checksum
from tcpip.wire.ipv4 import *  # noqa: F401,F403
from tcpip.wire.ipv4 import check, emit_header, ntoa
from wirerep import check_span

MIN_HEADER_LEN = const(20)
PROTO_ICMP = const(1)
PROTO_TCP = const(6)
PROTO_UDP = const(17)
DEFAULT_TTL = const(64)
FLAG_DF = const(0x4000)
FLAG_MF = const(0x2000)
FRAG_OFFSET_MASK = const(0x1FFF)
# Field offsets, relative to the start of the header (RFC 791 3.1).
VER_IHL = const(0)
TOS = const(1)
TOTAL_LEN = const(2)
IDENT = const(4)
FLAGS_FRAG = const(6)
TTL = const(8)
PROTO = const(9)
CHECKSUM = const(10)
SRC = const(12)
DST = const(16)
# check() results: 0 means the header is usable.
OK = const(0)
BAD_VERSION = const(1)
BAD_HEADER_LEN = const(2)
BAD_TOTAL_LEN = const(3)
BAD_CHECKSUM = const(4)
_REASONS = ("ok", "version is not 4", "bad header length", "bad total length", "bad header checksum")


def get_version(buf, off):
    return buf[off] >> 4


def get_header_len(buf, off):
    return (buf[off] & 0x0F) << 2


def get_tos(buf, off):
    return buf[off + 1]


def get_total_len(buf, off):
    return buf[off + 2] << 8 | buf[off + 3]


def get_ident(buf, off):
    return buf[off + 4] << 8 | buf[off + 5]


def get_flags_frag(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]


def get_ttl(buf, off):
    return buf[off + 8]


def get_proto(buf, off):
    return buf[off + 9]


def get_checksum(buf, off):
    return buf[off + 10] << 8 | buf[off + 11]


def set_version_ihl(buf, off, header_len):
    buf[off] = 0x40 | header_len >> 2


def set_tos(buf, off, value):
    buf[off + 1] = value


def set_total_len(buf, off, value):
    buf[off + 2] = value >> 8
    buf[off + 3] = value & 0xFF


def set_ident(buf, off, value):
    buf[off + 4] = value >> 8
    buf[off + 5] = value & 0xFF


def set_flags_frag(buf, off, value):
    buf[off + 6] = value >> 8
    buf[off + 7] = value & 0xFF


def set_ttl(buf, off, value):
    buf[off + 8] = value


def set_proto(buf, off, value):
    buf[off + 9] = value


def set_checksum(buf, off, value):
    buf[off + 10] = value >> 8
    buf[off + 11] = value & 0xFF


def fill_checksum(buf, off):
    """Recompute the header checksum in place (after a field changed)."""
    buf[off + 10] = 0
    buf[off + 11] = 0
    c = checksum(buf, off, off + ((buf[off] & 0x0F) << 2))
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF


class Ipv4Repr:
    """An IPv4 header without options. parse() skips options; emit() writes 20 bytes.

    payload_len = total length - header length; flags are df/mf plus frag_offset (8-byte units).
    """

    def __init__(self, src, dst, proto, payload_len, ttl=DEFAULT_TTL, ident=0, df=True, tos=0,
                 mf=False, frag_offset=0):
        self.src = bytes(src)
        self.dst = bytes(dst)
        self.proto = proto
        self.payload_len = payload_len
        self.ttl = ttl
        self.ident = ident
        self.df = bool(df)
        self.tos = tos
        self.mf = bool(mf)
        self.frag_offset = frag_offset

    @classmethod
    def parse(cls, buf, off, n):
        check_span(buf, off, n, MIN_HEADER_LEN, "ipv4")
        reason = check(buf, off, n)
        if reason:
            raise ValueError("ipv4: " + _REASONS[reason])
        ff = get_flags_frag(buf, off)
        return cls(buf[off + 12:off + 16], buf[off + 16:off + 20], get_proto(buf, off),
                   get_total_len(buf, off) - get_header_len(buf, off), get_ttl(buf, off),
                   get_ident(buf, off), ff & FLAG_DF, get_tos(buf, off), ff & FLAG_MF,
                   ff & FRAG_OFFSET_MASK)

    def buffer_len(self):
        """Bytes emit() writes (the header only)."""
        return MIN_HEADER_LEN

    def emit(self, buf, off):
        if not 0 <= self.payload_len <= 0xFFFF - 20:
            raise ValueError("ipv4: payload length %d out of range" % self.payload_len)
        emit_header(buf, off, self.src, 0, self.dst, 0, self.proto, self.payload_len, self.ident,
                    self.ttl, self.df)
        if self.tos or self.mf or self.frag_offset:
            buf[off + 1] = self.tos
            set_flags_frag(buf, off, (FLAG_DF if self.df else 0) | (FLAG_MF if self.mf else 0)
                           | self.frag_offset)
            fill_checksum(buf, off)

    def __eq__(self, other):
        return (isinstance(other, Ipv4Repr) and self.src == other.src and self.dst == other.dst
                and self.proto == other.proto and self.payload_len == other.payload_len
                and self.ttl == other.ttl and self.ident == other.ident and self.df == other.df
                and self.tos == other.tos and self.mf == other.mf
                and self.frag_offset == other.frag_offset)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return ("Ipv4Repr(src=%s, dst=%s, proto=%d, payload_len=%d, ttl=%d, ident=%d, df=%s, tos=%d,"
                " mf=%s, frag_offset=%d)" % (ntoa(self.src), ntoa(self.dst), self.proto,
                                              self.payload_len, self.ttl, self.ident, self.df,
                                              self.tos, self.mf, self.frag_offset))
