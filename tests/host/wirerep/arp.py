"""ARP for IPv4 over Ethernet (RFC 826), test side: lib's views (in tcpip.arp) plus offsets, accessors and
ArpRepr."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.arp import emit, get_oper, is_valid_ipv4_ethernet  # noqa: F401 (lib's, in tcpip.arp)
from wirerep import check_span

PACKET_LEN = const(28)
OP_REQUEST = const(1)
OP_REPLY = const(2)
HTYPE_ETHERNET = const(1)
PTYPE_IPV4 = const(0x0800)
# Field offsets, relative to the start of the ARP packet (RFC 826 "Packet format").
HTYPE = const(0)
PTYPE = const(2)
HLEN = const(4)
PLEN = const(5)
OPER = const(6)
SHA = const(8)
SPA = const(14)
THA = const(18)
TPA = const(24)


def get_htype(buf, off):
    return buf[off] << 8 | buf[off + 1]


def get_ptype(buf, off):
    return buf[off + 2] << 8 | buf[off + 3]


def get_hlen(buf, off):
    return buf[off + 4]


def get_plen(buf, off):
    return buf[off + 5]


def set_oper(buf, off, value):
    buf[off + 6] = value >> 8
    buf[off + 7] = value & 0xFF


def _ntoa(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def _mac(b):
    return ":".join("%02x" % x for x in b)


class ArpRepr:
    """An Ethernet/IPv4 ARP packet: oper, sha, spa, tha, tpa (addresses as bytes)."""

    def __init__(self, oper, sha, spa, tha, tpa):
        self.oper = oper
        self.sha = bytes(sha)
        self.spa = bytes(spa)
        self.tha = bytes(tha)
        self.tpa = bytes(tpa)

    @classmethod
    def parse(cls, buf, off, n):
        check_span(buf, off, n, PACKET_LEN, "arp")
        if not is_valid_ipv4_ethernet(buf, off, n):
            raise ValueError("arp: not Ethernet/IPv4 (htype %d ptype 0x%04x hlen %d plen %d)" % (
                get_htype(buf, off), get_ptype(buf, off), get_hlen(buf, off), get_plen(buf, off)))
        return cls(get_oper(buf, off), buf[off + 8:off + 14], buf[off + 14:off + 18],
                   buf[off + 18:off + 24], buf[off + 24:off + 28])

    def buffer_len(self):
        return PACKET_LEN

    def emit(self, buf, off):
        emit(buf, off, self.oper, self.sha, self.spa, self.tha, self.tpa)

    def __eq__(self, other):
        return (isinstance(other, ArpRepr) and self.oper == other.oper and self.sha == other.sha
                and self.spa == other.spa and self.tha == other.tha and self.tpa == other.tpa)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "ArpRepr(oper=%d, sha=%s, spa=%s, tha=%s, tpa=%s)" % (
            self.oper, _mac(self.sha), _ntoa(self.spa), _mac(self.tha), _ntoa(self.tpa))
