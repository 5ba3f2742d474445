"""ICMP for IPv4 (RFC 792), test side only (the stack builds and reads ICMP inline in
lib/tcpip/stack.py). The checksum covers the whole ICMP message."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.checksum import checksum
from wirerep import check_span

HEADER_LEN = const(8)
TYPE_ECHO_REPLY = const(0)
TYPE_DEST_UNREACH = const(3)
TYPE_SOURCE_QUENCH = const(4)
TYPE_REDIRECT = const(5)
TYPE_ECHO_REQUEST = const(8)
TYPE_TIME_EXCEEDED = const(11)
TYPE_PARAM_PROBLEM = const(12)
# Destination unreachable codes (RFC 792, RFC 1122 3.2.2.1, RFC 1812 5.2.7.1).
CODE_NET_UNREACH = const(0)
CODE_HOST_UNREACH = const(1)
CODE_PROTO_UNREACH = const(2)
CODE_PORT_UNREACH = const(3)
CODE_FRAG_NEEDED = const(4)
CODE_SOURCE_ROUTE_FAILED = const(5)
CODE_NET_UNKNOWN = const(6)
CODE_HOST_UNKNOWN = const(7)
CODE_HOST_ISOLATED = const(8)
CODE_NET_PROHIBITED = const(9)
CODE_HOST_PROHIBITED = const(10)
CODE_NET_UNREACH_TOS = const(11)
CODE_HOST_UNREACH_TOS = const(12)
CODE_ADMIN_PROHIBITED = const(13)
CODE_HOST_PRECEDENCE = const(14)
CODE_PRECEDENCE_CUTOFF = const(15)
# Time exceeded codes (RFC 792).
CODE_TTL_EXCEEDED = const(0)
CODE_REASSEMBLY_EXCEEDED = const(1)
# Field offsets, relative to the start of the ICMP message.
TYPE = const(0)
CODE = const(1)
CHECKSUM = const(2)
IDENT = const(4)  # echo: identifier; param problem: pointer (first byte)
SEQ = const(6)  # echo: sequence number; frag needed: next-hop MTU (RFC 1191)
QUOTED = const(8)  # errors: the offending IP header + first 8 data bytes (RFC 792)


def get_type(buf, off):
    return buf[off]


def get_code(buf, off):
    return buf[off + 1]


def get_checksum(buf, off):
    return buf[off + 2] << 8 | buf[off + 3]


def get_ident(buf, off):
    return buf[off + 4] << 8 | buf[off + 5]


def get_seq(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]


def get_next_hop_mtu(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]  # RFC 1191 4: low 16 bits of the unused word


def get_pointer(buf, off):
    return buf[off + 4]  # parameter problem (RFC 792)


def get_quoted_offset(buf, off):
    """Offset of the quoted IP header in dest-unreachable/time-exceeded/param-problem (RFC 792)."""
    return off + 8


def is_error(icmp_type):
    """True for the error types that quote the offending datagram (RFC 1122 3.2.2)."""
    return (icmp_type == 3 or icmp_type == 11 or icmp_type == 12 or icmp_type == 4
            or icmp_type == 5)


def set_type(buf, off, value):
    buf[off] = value


def set_code(buf, off, value):
    buf[off + 1] = value


def set_checksum(buf, off, value):
    buf[off + 2] = value >> 8
    buf[off + 3] = value & 0xFF


def set_ident(buf, off, value):
    buf[off + 4] = value >> 8
    buf[off + 5] = value & 0xFF


def set_seq(buf, off, value):
    buf[off + 6] = value >> 8
    buf[off + 7] = value & 0xFF


def fill_checksum(buf, off, n):
    """Compute and store the checksum over the n-byte message at off."""
    buf[off + 2] = 0
    buf[off + 3] = 0
    c = checksum(buf, off, off + n)
    buf[off + 2] = c >> 8
    buf[off + 3] = c & 0xFF


def is_checksum_valid(buf, off, n):
    return checksum(buf, off, off + n) == 0


class IcmpRepr:
    """type, code, ident, seq and payload_len of one ICMP message.

    ident/seq are the two 16-bit halves of the second header word: identifier and sequence for
    echo, unused (0) or next-hop MTU (seq) for errors. The payload (echo data, or the quoted
    datagram of an error) follows at offset 8 and must be in place before emit(), which fills
    the checksum over header and payload.
    """

    def __init__(self, type, code, ident=0, seq=0, payload_len=0):
        self.type = type
        self.code = code
        self.ident = ident
        self.seq = seq
        self.payload_len = payload_len

    @classmethod
    def parse(cls, buf, off, n):
        check_span(buf, off, n, HEADER_LEN, "icmp")
        if not is_checksum_valid(buf, off, n):
            raise ValueError("icmp: bad checksum")
        return cls(buf[off], buf[off + 1], get_ident(buf, off), get_seq(buf, off), n - HEADER_LEN)

    def buffer_len(self):
        """Header plus payload: the whole message."""
        return HEADER_LEN + self.payload_len

    def emit(self, buf, off):
        buf[off] = self.type
        buf[off + 1] = self.code
        set_ident(buf, off, self.ident)
        set_seq(buf, off, self.seq)
        fill_checksum(buf, off, HEADER_LEN + self.payload_len)

    def __eq__(self, other):
        return (isinstance(other, IcmpRepr) and self.type == other.type and self.code == other.code
                and self.ident == other.ident and self.seq == other.seq
                and self.payload_len == other.payload_len)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "IcmpRepr(type=%d, code=%d, ident=%d, seq=%d, payload_len=%d)" % (
            self.type, self.code, self.ident, self.seq, self.payload_len)
