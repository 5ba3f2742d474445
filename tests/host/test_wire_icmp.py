# dual: cpython micropython
"""ICMP (RFC 792): a real ping request and a host unreachable parsed, rebuilt, truncated."""
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import icmp, ipv4, tcp
from wirerep.icmp import IcmpRepr


# Linux ping: echo request, ident 0x04d2, seq 1, 56 data bytes (timestamp then 0x10..0x37).
ECHO = unhex("""
0800cb0004d20001 6c4d3e6600000000b3a50b0000000000 101112131415161718191a1b1c1d1e1f
202122232425262728292a2b2c2d2e2f 3031323334353637
""")
# The matching reply: only the type and (by RFC 1624 arithmetic, +0x0800) the checksum change.
ECHO_REPLY = b"\x00\x00\xd3\x00" + ECHO[4:]
# IPv4 packet from router 192.168.69.1: host unreachable quoting our SYN to 203.0.113.9:80.
UNREACH = unhex("""
450000381c4600004001532bc0a84501 c0a84502
0301180c00000000 4500002c000040004006f917c0a84502cb007109 c15c005000012345
""")
UOFF = 20
ULEN = 36


def test_parse_echo_fields():
    r = IcmpRepr.parse(ECHO, 0, len(ECHO))
    assert r.type == icmp.TYPE_ECHO_REQUEST and r.code == 0
    assert r.ident == 0x04d2 and r.seq == 1
    assert r.payload_len == 56
    assert r.buffer_len() == 64 == len(ECHO)


def test_echo_accessors():
    assert icmp.get_type(ECHO, 0) == 8
    assert icmp.get_code(ECHO, 0) == 0
    assert icmp.get_checksum(ECHO, 0) == 0xcb00
    assert icmp.get_ident(ECHO, 0) == 1234
    assert icmp.get_seq(ECHO, 0) == 1
    assert icmp.is_checksum_valid(ECHO, 0, 64)
    assert not icmp.is_error(icmp.get_type(ECHO, 0))


def test_emit_echo_matches_literal():
    # The payload is the caller's: put it in place, then emit writes header and checksum.
    buf = bytearray(b"\xa5" * 70)
    for i in range(56):
        buf[3 + 8 + i] = ECHO[8 + i]
    IcmpRepr(icmp.TYPE_ECHO_REQUEST, 0, 0x04d2, 1, 56).emit(buf, 3)
    assert bytes(buf[3:67]) == ECHO
    assert bytes(buf[:3]) == b"\xa5" * 3 and bytes(buf[67:]) == b"\xa5" * 3


def test_echo_reply_in_place():
    buf = bytearray(ECHO)
    icmp.set_type(buf, 0, icmp.TYPE_ECHO_REPLY)
    icmp.fill_checksum(buf, 0, len(buf))
    assert bytes(buf) == ECHO_REPLY
    r = IcmpRepr.parse(ECHO_REPLY, 0, 64)
    assert r == IcmpRepr(icmp.TYPE_ECHO_REPLY, 0, 0x04d2, 1, 56)


def test_truncated():
    for n in range(len(ECHO)):
        expect_value_error(IcmpRepr.parse, ECHO, 0, n)


def test_bad_checksum():
    buf = bytearray(ECHO)
    buf[20] ^= 1
    assert not icmp.is_checksum_valid(buf, 0, 64)
    expect_value_error(IcmpRepr.parse, buf, 0, 64)


def test_dest_unreachable_and_quote():
    assert ipv4.check(UNREACH, 0, len(UNREACH)) == 0
    assert ipv4.get_proto(UNREACH, 0) == ipv4.PROTO_ICMP
    r = IcmpRepr.parse(UNREACH, UOFF, ULEN)
    assert r == IcmpRepr(icmp.TYPE_DEST_UNREACH, icmp.CODE_HOST_UNREACH, 0, 0, 28)
    assert icmp.is_error(r.type)
    # RFC 792: the quoted datagram (IP header + first 8 data bytes) starts 8 bytes in.
    q = icmp.get_quoted_offset(UNREACH, UOFF)
    assert q == UOFF + icmp.QUOTED == 28
    assert ipv4.get_version(UNREACH, q) == 4
    assert ipv4.get_proto(UNREACH, q) == ipv4.PROTO_TCP
    assert ipv4.ntoa(UNREACH, q + ipv4.SRC) == "192.168.69.2"
    assert ipv4.ntoa(UNREACH, q + ipv4.DST) == "203.0.113.9"
    t = q + ipv4.get_header_len(UNREACH, q)
    assert len(UNREACH) - t == 8
    assert tcp.get_src_port(UNREACH, t) == 49500
    assert tcp.get_dst_port(UNREACH, t) == 80
    assert tcp.get_seq(UNREACH, t) == 0x12345
    # The quote is cut after 8 data bytes, so ipv4.check must not be applied to it as a whole.
    assert ipv4.check(UNREACH, q, 28) == ipv4.BAD_TOTAL_LEN


def test_emit_unreachable_matches_literal():
    buf = bytearray(b"\xa5" * 40)
    for i in range(28):
        buf[8 + i] = UNREACH[28 + i]
    IcmpRepr(icmp.TYPE_DEST_UNREACH, icmp.CODE_HOST_UNREACH, 0, 0, 28).emit(buf, 0)
    assert bytes(buf[:36]) == UNREACH[UOFF:]
    assert bytes(buf[36:]) == b"\xa5" * 4


def test_frag_needed_mtu():
    buf = bytearray(UNREACH[UOFF:])
    icmp.set_code(buf, 0, icmp.CODE_FRAG_NEEDED)
    icmp.set_seq(buf, 0, 1400)  # RFC 1191: next-hop MTU in the low half of the second word
    icmp.fill_checksum(buf, 0, ULEN)
    r = IcmpRepr.parse(buf, 0, ULEN)
    assert r.code == 4 and r.seq == 1400 and icmp.get_next_hop_mtu(buf, 0) == 1400


def test_setters():
    buf = bytearray(ECHO)
    icmp.set_ident(buf, 0, 0xbeef)
    icmp.set_seq(buf, 0, 0xffff)
    icmp.set_checksum(buf, 0, 0x1234)
    assert icmp.get_ident(buf, 0) == 0xbeef and icmp.get_seq(buf, 0) == 0xffff
    assert icmp.get_checksum(buf, 0) == 0x1234
    buf[4] = 7
    assert icmp.get_pointer(buf, 0) == 7


def test_codes():
    assert (icmp.CODE_NET_UNREACH, icmp.CODE_HOST_UNREACH, icmp.CODE_PROTO_UNREACH,
            icmp.CODE_PORT_UNREACH, icmp.CODE_FRAG_NEEDED, icmp.CODE_ADMIN_PROHIBITED) == (0, 1, 2, 3, 4, 13)
    assert (icmp.TYPE_ECHO_REPLY, icmp.TYPE_DEST_UNREACH, icmp.TYPE_ECHO_REQUEST,
            icmp.TYPE_TIME_EXCEEDED, icmp.TYPE_PARAM_PROBLEM) == (0, 3, 8, 11, 12)


def test_repr_text():
    text = repr(IcmpRepr.parse(ECHO, 0, 64))
    assert text == "IcmpRepr(type=8, code=0, ident=1234, seq=1, payload_len=56)", text
    assert IcmpRepr(8, 0, 1, 2, 3) != IcmpRepr(8, 0, 1, 2, 4)


def test_hot_path_allocates_nothing():
    buf = bytearray(ECHO)
    out = [0, 0]

    def work():
        icmp.set_type(buf, 0, 0)
        icmp.fill_checksum(buf, 0, 64)
        out[0] = icmp.is_checksum_valid(buf, 0, 64)
        out[1] = icmp.get_ident(buf, 0) + icmp.get_seq(buf, 0) + icmp.get_quoted_offset(buf, 0)

    heap_locked(work)
    assert out == [True, 1243]
