"""ARP for IPv4 over Ethernet (RFC 826).

Only what the stack uses; offsets, accessors and ArpRepr: tests/host/wirerep/arp.py.
"""


def get_oper(buf, off):
    return buf[off + 6] << 8 | buf[off + 7]


def is_valid_ipv4_ethernet(buf, off, n):
    """n bytes at off hold an Ethernet/IPv4 ARP packet (trailing padding allowed)."""
    # RFC 826: a receiver handles only the (ar$hrd, ar$pro) pairs it knows; ours is 1/0x0800, 6/4.
    return (n >= 28 and buf[off] == 0 and buf[off + 1] == 1 and buf[off + 2] == 0x08
            and buf[off + 3] == 0 and buf[off + 4] == 6 and buf[off + 5] == 4)


def emit(buf, off, oper, sha, spa, tha, tpa):
    """Write a 28-byte Ethernet/IPv4 ARP packet; sha/tha 6-byte, spa/tpa 4-byte buffers."""
    buf[off] = 0
    buf[off + 1] = 1
    buf[off + 2] = 0x08
    buf[off + 3] = 0
    buf[off + 4] = 6
    buf[off + 5] = 4
    buf[off + 6] = oper >> 8
    buf[off + 7] = oper & 0xFF
    for i in range(6):
        buf[off + 8 + i] = sha[i]
        buf[off + 18 + i] = tha[i]
    for i in range(4):
        buf[off + 14 + i] = spa[i]
        buf[off + 24 + i] = tpa[i]
