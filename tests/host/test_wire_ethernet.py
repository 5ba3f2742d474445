# dual: cpython micropython
"""Ethernet header: a real frame (an ARP request, padded to 60 bytes) parsed, rebuilt, truncated."""
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import ethernet
from wirerep.ethernet import EthernetRepr


# ARP who-has 192.168.69.1 tell 192.168.69.2, from 02:00:00:00:00:02 to broadcast.
FRAME = unhex("""
ffffffffffff02000000000208060001 080006040001020000000002c0a84502
000000000000c0a84501000000000000 000000000000000000000000
""")
SRC_MAC = unhex("020000000002")


def test_frame_len():
    assert len(FRAME) == 60


def test_parse_fields():
    r = EthernetRepr.parse(FRAME, 0, len(FRAME))
    assert r.dst == ethernet.BROADCAST
    assert r.src == SRC_MAC
    assert r.ethertype == ethernet.ETHERTYPE_ARP
    assert r.buffer_len() == ethernet.HEADER_LEN == 14


def test_accessors():
    assert ethernet.get_ethertype(FRAME, 0) == 0x0806
    assert ethernet.is_broadcast(FRAME, 0)
    assert ethernet.is_multicast(FRAME, 0)
    assert not ethernet.is_broadcast(FRAME, 6)
    assert not ethernet.is_multicast(FRAME, 6)
    # The same header at an odd offset.
    buf = b"\x00\x00\x00" + FRAME
    assert ethernet.get_ethertype(buf, 3) == ethernet.ETHERTYPE_ARP
    assert ethernet.is_broadcast(buf, 3)


def test_emit_matches_literal():
    buf = bytearray(b"\xa5" * 20)
    EthernetRepr(ethernet.BROADCAST, SRC_MAC, ethernet.ETHERTYPE_ARP).emit(buf, 0)
    assert bytes(buf[:14]) == FRAME[:14]
    assert bytes(buf[14:]) == b"\xa5" * 6


def test_emit_header_at_offset():
    buf = bytearray(b"\xa5" * 20)
    ethernet.emit_header(buf, 2, ethernet.BROADCAST, SRC_MAC, 0x0806)
    assert bytes(buf[2:16]) == FRAME[:14]
    assert bytes(buf[:2]) == b"\xa5\xa5" and bytes(buf[16:]) == b"\xa5" * 4


def test_set_ethertype():
    buf = bytearray(FRAME)
    ethernet.set_ethertype(buf, 0, ethernet.ETHERTYPE_IPV4)
    assert bytes(buf[12:14]) == b"\x08\x00"
    assert ethernet.get_ethertype(buf, 0) == 0x0800


def test_truncated():
    for n in range(14):
        expect_value_error(EthernetRepr.parse, FRAME, 0, n)


def test_length_beyond_buffer():
    for off, n in ((0, 61), (50, 14), (-1, 14), (0, -1)):
        expect_value_error(EthernetRepr.parse, FRAME, off, n)


def test_round_trip_and_eq():
    r = EthernetRepr(b"\x01\x02\x03\x04\x05\x06", SRC_MAC, 0x88cc)
    buf = bytearray(14)
    r.emit(buf, 0)
    assert EthernetRepr.parse(buf, 0, 14) == r
    assert EthernetRepr.parse(FRAME, 0, 60) != r
    assert not (EthernetRepr.parse(buf, 0, 14) != r)


def test_repr_text():
    text = repr(EthernetRepr.parse(FRAME, 0, 60))
    assert text == "EthernetRepr(dst=ff:ff:ff:ff:ff:ff, src=02:00:00:00:00:02, ethertype=0x0806)", text
    assert ethernet.mac_ntoa(FRAME, 6) == "02:00:00:00:00:02"


def test_hot_path_allocates_nothing():
    buf = bytearray(64)
    out = [0, 0]

    def work():
        ethernet.emit_header(buf, 0, ethernet.BROADCAST, SRC_MAC, 0x0806)
        out[0] = ethernet.get_ethertype(buf, 0)
        out[1] = ethernet.is_broadcast(buf, 0)

    heap_locked(work)
    assert out[0] == 0x0806 and out[1]
