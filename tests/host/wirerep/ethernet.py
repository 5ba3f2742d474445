"""Ethernet II header, test side: lib's views (in tcpip.arp) plus offsets, accessors and EthernetRepr."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.arp import BROADCAST, emit_header  # noqa: F401 (lib's, in tcpip.arp)
from wirerep import check_span

HEADER_LEN = const(14)
# Field offsets, relative to the start of the frame.
DST = const(0)
SRC = const(6)
ETHERTYPE = const(12)

ETHERTYPE_IPV4 = const(0x0800)
ETHERTYPE_ARP = const(0x0806)


def get_ethertype(buf, off):
    return buf[off + 12] << 8 | buf[off + 13]


def set_ethertype(buf, off, value):
    buf[off + 12] = value >> 8
    buf[off + 13] = value & 0xFF


def is_broadcast(buf, off):
    """True when the destination address is ff:ff:ff:ff:ff:ff."""
    return (buf[off] & buf[off + 1] & buf[off + 2] & buf[off + 3] & buf[off + 4] & buf[off + 5]) == 0xFF


def is_multicast(buf, off):
    """True when the destination has the group bit set (broadcast included)."""
    return buf[off] & 1 == 1


def mac_ntoa(buf, off=0):
    """"aa:bb:cc:dd:ee:ff" for the 6 bytes at buf[off] (allocates; not for hot paths)."""
    return ":".join("%02x" % buf[off + i] for i in range(6))


class EthernetRepr:
    """Destination, source (6-byte bytes) and EtherType of one frame."""

    def __init__(self, dst, src, ethertype):
        self.dst = bytes(dst)
        self.src = bytes(src)
        self.ethertype = ethertype

    @classmethod
    def parse(cls, buf, off, n):
        check_span(buf, off, n, HEADER_LEN, "ethernet")
        return cls(bytes(buf[off:off + 6]), bytes(buf[off + 6:off + 12]), get_ethertype(buf, off))

    def buffer_len(self):
        return HEADER_LEN

    def emit(self, buf, off):
        emit_header(buf, off, self.dst, self.src, self.ethertype)

    def __eq__(self, other):
        return (isinstance(other, EthernetRepr) and self.dst == other.dst and self.src == other.src
                and self.ethertype == other.ethertype)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "EthernetRepr(dst=%s, src=%s, ethertype=0x%04x)" % (
            mac_ntoa(self.dst), mac_ntoa(self.src), self.ethertype)
