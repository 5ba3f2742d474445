"""Ethernet II header (IEEE 802.3 with an EtherType; no FCS, no VLAN tag).

Only what the stack uses; offsets, accessors and EthernetRepr: tests/host/wirerep/ethernet.py.
"""
BROADCAST = b"\xff\xff\xff\xff\xff\xff"


def emit_header(buf, off, dst_mac, src_mac, ethertype):
    """Write the 14-byte header; dst_mac and src_mac are 6-byte buffers."""
    for i in range(6):
        buf[off + i] = dst_mac[i]
        buf[off + 6 + i] = src_mac[i]
    buf[off + 12] = ethertype >> 8
    buf[off + 13] = ethertype & 0xFF
