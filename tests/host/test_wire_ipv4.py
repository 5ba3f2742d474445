# dual: cpython micropython
"""IPv4 header (RFC 791): a real ping packet parsed, rebuilt, truncated; check() reasons; addresses."""
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import ipv4
from wirerep.ipv4 import Ipv4Repr


# Linux ping 192.168.69.2 -> 192.168.69.1 (ident 0x6f3a, DF, TTL 64), without its Ethernet header.
PING = unhex("""
4500 0054 6f3a 4000 4001 c01a c0a8 4502 c0a8 4501
0800cb0004d200016c4d3e6600000000 b3a50b00000000001011121314151617
18191a1b1c1d1e1f2021222324252627 28292a2b2c2d2e2f3031323334353637
""")
# Linux SYN-ACK 192.168.69.1 -> .2 (ident 0, DF), inside a 60-byte frame: 2 bytes Ethernet padding.
SYNACK = unhex("""
4500 002c 0000 4000 4006 2f78 c0a8 4501 c0a8 4502
0050c15cd1b2c3a40001e2416012faf0 588a0000020405b4 0000
""")
# A router's host unreachable (no DF, ident 0x1c46).
UNREACH = unhex("""
4500 0038 1c46 0000 4001 532b c0a8 4501 c0a8 4502
0301180c000000004500002c00004000 4006f917c0a84502cb007109c15c0050 00012345
""")
IP_A = unhex("c0a84501")
IP_B = unhex("c0a84502")


def test_parse_fields():
    r = Ipv4Repr.parse(PING, 0, len(PING))
    assert r.src == IP_B and r.dst == IP_A
    assert r.proto == ipv4.PROTO_ICMP
    assert r.payload_len == 64
    assert r.ttl == 64 and r.ident == 0x6f3a
    assert r.df and not r.mf and r.frag_offset == 0 and r.tos == 0
    assert r.buffer_len() == ipv4.MIN_HEADER_LEN == 20


def test_accessors():
    assert ipv4.check(PING, 0, len(PING)) == 0
    assert ipv4.get_version(PING, 0) == 4
    assert ipv4.get_header_len(PING, 0) == 20
    assert ipv4.get_tos(PING, 0) == 0
    assert ipv4.get_total_len(PING, 0) == 84
    assert ipv4.get_ident(PING, 0) == 0x6f3a
    assert ipv4.get_flags_frag(PING, 0) == ipv4.FLAG_DF
    assert not ipv4.is_fragment(PING, 0)
    assert ipv4.get_ttl(PING, 0) == ipv4.DEFAULT_TTL
    assert ipv4.get_proto(PING, 0) == 1
    assert ipv4.get_checksum(PING, 0) == 0xc01a
    assert PING[ipv4.SRC:ipv4.SRC + 4] == IP_B and PING[ipv4.DST:ipv4.DST + 4] == IP_A


def test_emit_header_matches_literal():
    buf = bytearray(b"\xa5" * 26)
    ipv4.emit_header(buf, 3, IP_B, 0, IP_A, 0, ipv4.PROTO_ICMP, 64, 0x6f3a, 64, True)
    assert bytes(buf[3:23]) == PING[:20]
    assert bytes(buf[:3]) == b"\xa5" * 3 and bytes(buf[23:]) == b"\xa5" * 3


def test_emit_header_addresses_at_offsets():
    addrs = b"\x00" + IP_A + IP_B
    buf = bytearray(b"\xa5" * 20)
    ipv4.emit_header(buf, 0, addrs, 1, addrs, 5, ipv4.PROTO_TCP, 24, 0, 64, True)
    assert bytes(buf) == SYNACK[:20]


def test_repr_emit_matches_literal():
    for packet in (PING, SYNACK, UNREACH):
        r = Ipv4Repr.parse(packet, 0, len(packet))
        buf = bytearray(b"\xa5" * 22)
        r.emit(buf, 0)
        assert bytes(buf[:20]) == packet[:20]
        assert bytes(buf[20:]) == b"\xa5\xa5"


def test_padding_after_total_len_accepted():
    assert ipv4.check(SYNACK, 0, len(SYNACK)) == 0
    r = Ipv4Repr.parse(SYNACK, 0, len(SYNACK))
    assert r.payload_len == 24 and r.proto == ipv4.PROTO_TCP and r.ident == 0


def test_no_df():
    r = Ipv4Repr.parse(UNREACH, 0, len(UNREACH))
    assert not r.df and r.ident == 0x1c46 and r.payload_len == 36


def test_truncated():
    for n in range(len(PING)):
        expect_value_error(Ipv4Repr.parse, PING, 0, n)
        assert ipv4.check(PING, 0, n) != 0, n


def test_check_reasons():
    assert ipv4.check(PING, 0, 19) == ipv4.BAD_HEADER_LEN
    buf = bytearray(PING)
    buf[0] = 0x65
    assert ipv4.check(buf, 0, 84) == ipv4.BAD_VERSION
    buf[0] = 0x44
    assert ipv4.check(buf, 0, 84) == ipv4.BAD_HEADER_LEN
    buf[0] = 0x4f  # 60 bytes of header: fits in 84, but total_len must then be >= 60
    buf[2], buf[3] = 0, 84
    assert ipv4.check(buf, 0, 50) == ipv4.BAD_HEADER_LEN
    buf = bytearray(PING)
    buf[3] = 19
    assert ipv4.check(buf, 0, 84) == ipv4.BAD_TOTAL_LEN
    buf[3] = 85
    assert ipv4.check(buf, 0, 84) == ipv4.BAD_TOTAL_LEN
    buf = bytearray(PING)
    buf[8] = 63  # TTL changed without updating the checksum
    assert ipv4.check(buf, 0, 84) == ipv4.BAD_CHECKSUM
    expect_value_error(Ipv4Repr.parse, buf, 0, 84)
    ipv4.fill_checksum(buf, 0)
    assert ipv4.check(buf, 0, 84) == 0
    assert ipv4.get_checksum(buf, 0) == 0xc11a
    reasons = (ipv4.OK, ipv4.BAD_VERSION, ipv4.BAD_HEADER_LEN, ipv4.BAD_TOTAL_LEN, ipv4.BAD_CHECKSUM)
    assert len(set(reasons)) == 5 and ipv4.OK == 0


def test_options_skipped():
    # IHL 6: a 4-byte option (NOP NOP NOP END) before the payload; Repr reports the payload length.
    buf = bytearray(PING[:20] + b"\x01\x01\x01\x00" + PING[20:])
    buf[0] = 0x46
    buf[3] = 88
    ipv4.fill_checksum(buf, 0)
    assert ipv4.check(buf, 0, len(buf)) == 0
    assert ipv4.get_header_len(buf, 0) == 24
    assert Ipv4Repr.parse(buf, 0, len(buf)).payload_len == 64


def test_fragments():
    buf = bytearray(PING)
    ipv4.set_flags_frag(buf, 0, ipv4.FLAG_MF)
    assert ipv4.is_fragment(buf, 0)
    ipv4.set_flags_frag(buf, 0, ipv4.FLAG_DF | 1)
    assert ipv4.is_fragment(buf, 0)
    ipv4.set_flags_frag(buf, 0, 0x1000)
    assert ipv4.is_fragment(buf, 0)
    ipv4.set_flags_frag(buf, 0, 0x8000)  # the reserved bit alone is not a fragment
    assert not ipv4.is_fragment(buf, 0)
    r = Ipv4Repr(IP_A, IP_B, 17, 100, 5, 7, False, 0x10, True, 0x123)
    out = bytearray(20)
    r.emit(out, 0)
    assert ipv4.get_flags_frag(out, 0) == ipv4.FLAG_MF | 0x123 and ipv4.get_tos(out, 0) == 0x10
    assert ipv4.check(out, 0, 120) == 0
    assert Ipv4Repr.parse(out + bytearray(100), 0, 120) == r


def test_setters():
    buf = bytearray(20)
    ipv4.set_version_ihl(buf, 0, 20)
    ipv4.set_tos(buf, 0, 0)
    ipv4.set_total_len(buf, 0, 84)
    ipv4.set_ident(buf, 0, 0x6f3a)
    ipv4.set_flags_frag(buf, 0, ipv4.FLAG_DF)
    ipv4.set_ttl(buf, 0, 64)
    ipv4.set_proto(buf, 0, 1)
    ipv4.set_checksum(buf, 0, 0xc01a)
    for i in range(4):
        buf[12 + i] = IP_B[i]
        buf[16 + i] = IP_A[i]
    assert bytes(buf) == PING[:20]


def test_repr_eq_and_text():
    a = Ipv4Repr.parse(PING, 0, 84)
    assert a == Ipv4Repr(IP_B, IP_A, 1, 64, 64, 0x6f3a, True)
    assert a != Ipv4Repr(IP_B, IP_A, 1, 64, 63, 0x6f3a, True)
    text = repr(a)
    assert text == ("Ipv4Repr(src=192.168.69.2, dst=192.168.69.1, proto=1, payload_len=64, ttl=64,"
                    " ident=28474, df=True, tos=0, mf=False, frag_offset=0)"), text


def test_emit_rejects_oversized_payload():
    expect_value_error(Ipv4Repr(IP_A, IP_B, 6, 65516).emit, bytearray(20), 0)


def test_aton_ntoa():
    assert ipv4.aton("192.168.69.1") == IP_A
    assert ipv4.aton("0.0.0.0") == b"\x00\x00\x00\x00"
    assert ipv4.aton("255.255.255.255") == b"\xff\xff\xff\xff"
    assert ipv4.aton("10.0.200.9") == b"\x0a\x00\xc8\x09"
    assert ipv4.ntoa(IP_A) == "192.168.69.1"
    assert ipv4.ntoa(PING, 12) == "192.168.69.2"


def test_aton_rejects():
    bad = ("", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "+1.2.3.4", "1.+2.3.4", "-1.2.3.4",
           "1..3.4", ".1.2.3", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "1.2 .3.4", "1.2.3.4\n",
           "01.2.3.4", "1.2.3.00", "0x1.2.3.4", "a.b.c.d", "1.2.3.1000", "1234.1.1.1",
           "1.2.3.4/24", "1,2,3,4", "\u0661.2.3.4", "1.2.3.\uff14", "1e2.1.1.1", "1_0.1.1.1")
    for text in bad:
        expect_value_error(ipv4.aton, text)


def test_address_classes():
    assert ipv4.is_multicast(ipv4.aton("224.0.0.1"), 0)
    assert ipv4.is_multicast(ipv4.aton("239.255.255.250"))
    assert not ipv4.is_multicast(ipv4.aton("240.0.0.1"))
    assert not ipv4.is_multicast(ipv4.aton("223.255.255.255"))
    assert ipv4.is_limited_broadcast(b"\x00\xff\xff\xff\xff", 1)
    assert not ipv4.is_limited_broadcast(ipv4.aton("255.255.255.254"))
    assert not ipv4.is_limited_broadcast(ipv4.aton("192.168.69.255"))
    assert ipv4.is_zero(ipv4.aton("0.0.0.0"))
    assert not ipv4.is_zero(ipv4.aton("0.0.0.1"))
    assert ipv4.is_loopback(ipv4.aton("127.0.0.1"))
    assert ipv4.is_loopback(ipv4.aton("127.255.0.9"))
    assert not ipv4.is_loopback(ipv4.aton("128.0.0.1"))
    assert ipv4.is_loopback(PING, 0) is False


def test_hot_path_allocates_nothing():
    buf = bytearray(84)
    out = [0, 0, 0, 0]

    def work():
        ipv4.emit_header(buf, 0, IP_B, 0, IP_A, 0, 1, 64, 0x6f3a, 64, True)
        out[0] = ipv4.check(buf, 0, 84)
        out[1] = ipv4.get_proto(buf, 0) + ipv4.get_header_len(buf, 0) + ipv4.get_total_len(buf, 0)
        out[2] = ipv4.is_fragment(buf, 0) or ipv4.is_multicast(buf, 16)
        out[3] = ipv4.get_ident(buf, 0)

    heap_locked(work)
    assert out == [0, 105, False, 0x6f3a]
