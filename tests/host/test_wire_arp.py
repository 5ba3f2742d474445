# dual: cpython micropython
"""ARP (RFC 826): a real request frame parsed, rebuilt into 0xA5 bytes, truncated, mangled."""
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import arp
from wirerep.arp import ArpRepr


# Ethernet frame: ARP who-has 192.168.69.1 tell 192.168.69.2 (28 bytes at 14, then 18 bytes padding).
FRAME = unhex("""
ffffffffffff02000000000208060001 080006040001020000000002c0a84502
000000000000c0a84501000000000000 000000000000000000000000
""")
OFF = 14
MAC_B = unhex("020000000002")
MAC_A = unhex("525400123401")
IP_A = unhex("c0a84501")
IP_B = unhex("c0a84502")
ZERO_MAC = b"\x00" * 6


def test_parse_fields():
    r = ArpRepr.parse(FRAME, OFF, len(FRAME) - OFF)  # trailing Ethernet padding is allowed
    assert r.oper == arp.OP_REQUEST
    assert r.sha == MAC_B
    assert r.spa == IP_B
    assert r.tha == ZERO_MAC
    assert r.tpa == IP_A
    assert r.buffer_len() == arp.PACKET_LEN == 28


def test_accessors():
    assert arp.is_valid_ipv4_ethernet(FRAME, OFF, 46)
    assert arp.is_valid_ipv4_ethernet(FRAME, OFF, 28)
    assert not arp.is_valid_ipv4_ethernet(FRAME, OFF, 27)
    assert arp.get_htype(FRAME, OFF) == 1
    assert arp.get_ptype(FRAME, OFF) == 0x0800
    assert arp.get_hlen(FRAME, OFF) == 6
    assert arp.get_plen(FRAME, OFF) == 4
    assert arp.get_oper(FRAME, OFF) == 1
    # Address fields are compared in place at the relative offsets.
    assert FRAME[OFF + arp.SHA:OFF + arp.SHA + 6] == MAC_B
    assert FRAME[OFF + arp.SPA:OFF + arp.SPA + 4] == IP_B
    assert FRAME[OFF + arp.THA:OFF + arp.THA + 6] == ZERO_MAC
    assert FRAME[OFF + arp.TPA:OFF + arp.TPA + 4] == IP_A


def test_emit_matches_literal():
    buf = bytearray(b"\xa5" * 34)
    ArpRepr(arp.OP_REQUEST, MAC_B, IP_B, ZERO_MAC, IP_A).emit(buf, 3)
    assert bytes(buf[3:31]) == FRAME[OFF:OFF + 28]
    assert bytes(buf[:3]) == b"\xa5" * 3 and bytes(buf[31:]) == b"\xa5" * 3


def test_emit_function_matches_literal():
    buf = bytearray(b"\xa5" * 30)
    arp.emit(buf, 0, 1, MAC_B, IP_B, ZERO_MAC, IP_A)
    assert bytes(buf[:28]) == FRAME[OFF:OFF + 28]
    assert bytes(buf[28:]) == b"\xa5\xa5"


def test_reply_round_trip():
    reply = ArpRepr(arp.OP_REPLY, MAC_A, IP_A, MAC_B, IP_B)
    buf = bytearray(28)
    reply.emit(buf, 0)
    assert arp.get_oper(buf, 0) == arp.OP_REPLY
    assert ArpRepr.parse(buf, 0, 28) == reply
    assert ArpRepr.parse(FRAME, OFF, 28) != reply


def test_set_oper():
    buf = bytearray(FRAME)
    arp.set_oper(buf, OFF, arp.OP_REPLY)
    assert arp.get_oper(buf, OFF) == 2 and buf[OFF + 6] == 0


def test_truncated():
    for n in range(28):
        expect_value_error(ArpRepr.parse, FRAME, OFF, n)


def test_other_hardware_or_protocol_rejected():
    # RFC 826: only (Ethernet, IPv4) with lengths 6/4 is ours.
    for pos, value in ((1, 6), (0, 1), (2, 0x86), (3, 0xdd), (4, 8), (5, 16)):
        buf = bytearray(FRAME)
        buf[OFF + pos] = value
        assert not arp.is_valid_ipv4_ethernet(buf, OFF, 46), pos
        expect_value_error(ArpRepr.parse, buf, OFF, 46)


def test_repr_text():
    text = repr(ArpRepr.parse(FRAME, OFF, 28))
    assert text == ("ArpRepr(oper=1, sha=02:00:00:00:00:02, spa=192.168.69.2, "
                    "tha=00:00:00:00:00:00, tpa=192.168.69.1)"), text


def test_hot_path_allocates_nothing():
    buf = bytearray(28)
    out = [0, 0]

    def work():
        arp.emit(buf, 0, 2, MAC_A, IP_A, MAC_B, IP_B)
        out[0] = arp.is_valid_ipv4_ethernet(buf, 0, 28)
        out[1] = arp.get_oper(buf, 0)

    heap_locked(work)
    assert out[0] and out[1] == 2
