"""Property tests for the wire layer (CPython only: hypothesis).

Random bytes into every Repr.parse raise nothing but ValueError; get_mss_option and ipv4.check
never raise; Repr round trips parse(emit(x)) == x for random field values.
"""
from hypothesis import given, settings
from hypothesis import strategies as st

from wirerep import arp, ethernet, icmp, ipv4, tcp
from wirerep.arp import ArpRepr
from wirerep.ethernet import EthernetRepr
from wirerep.icmp import IcmpRepr
from wirerep.ipv4 import Ipv4Repr
from wirerep.tcp import TcpRepr

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
mac = st.binary(min_size=6, max_size=6)
addr = st.binary(min_size=4, max_size=4)
PARSERS = (EthernetRepr.parse, ArpRepr.parse, Ipv4Repr.parse, IcmpRepr.parse, TcpRepr.parse)


@st.composite
def span(draw, max_size=120):
    data = draw(st.binary(max_size=max_size))
    off = draw(st.integers(-2, len(data) + 2))
    n = draw(st.integers(-2, len(data) + 2))
    return data, off, n


@settings(max_examples=500)
@given(span(), st.sampled_from(PARSERS))
def test_parse_random_bytes_only_value_error(s, parse):
    data, off, n = s
    for buf in (data, bytearray(data), memoryview(data)):
        try:
            parse(buf, off, n)
        except ValueError:
            pass


@settings(max_examples=300)
@given(span(), addr, addr)
def test_tcp_parse_with_checksum_only_value_error(s, src, dst):
    data, off, n = s
    try:
        TcpRepr.parse(data, off, n, src, dst)
    except ValueError:
        pass


@settings(max_examples=500)
@given(st.binary(max_size=80), st.integers(0, 80), st.integers(-8, 100))
def test_mss_option_never_raises(data, off, header_len):
    mss = tcp.get_mss_option(data, off, header_len)
    assert 0 <= mss <= 0xFFFF


@settings(max_examples=500)
@given(st.binary(min_size=20, max_size=40).map(bytearray), st.binary(max_size=40))
def test_mss_option_header_from_bytes(header, options):
    buf = bytes(header[:20]) + options
    hl = tcp.get_header_len(buf, 0)
    assert 0 <= tcp.get_mss_option(buf, 0, hl) <= 0xFFFF


@given(st.binary(max_size=80))
def test_ipv4_check_never_raises(data):
    for n in range(len(data) + 1):
        assert ipv4.check(data, 0, n) in (0, ipv4.BAD_VERSION, ipv4.BAD_HEADER_LEN,
                                          ipv4.BAD_TOTAL_LEN, ipv4.BAD_CHECKSUM)
        assert arp.is_valid_ipv4_ethernet(data, 0, n) in (True, False)


@given(mac, mac, u16)
def test_ethernet_round_trip(dst, src, ethertype):
    r = EthernetRepr(dst, src, ethertype)
    buf = bytearray(b"\xa5" * r.buffer_len())
    r.emit(buf, 0)
    assert EthernetRepr.parse(buf, 0, len(buf)) == r
    assert ethernet.get_ethertype(buf, 0) == ethertype


@given(u16, mac, addr, mac, addr)
def test_arp_round_trip(oper, sha, spa, tha, tpa):
    r = ArpRepr(oper, sha, spa, tha, tpa)
    buf = bytearray(b"\xa5" * r.buffer_len())
    r.emit(buf, 0)
    assert ArpRepr.parse(buf, 0, len(buf)) == r


@given(addr, addr, u8, st.integers(0, 0xFFFF - 20), u8, u16, st.booleans(), u8, st.booleans(),
       st.integers(0, 0x1FFF))
def test_ipv4_round_trip(src, dst, proto, payload_len, ttl, ident, df, tos, mf, frag):
    r = Ipv4Repr(src, dst, proto, payload_len, ttl, ident, df, tos, mf, frag)
    buf = bytearray(b"\xa5" * (20 + payload_len))
    r.emit(buf, 0)
    assert ipv4.check(buf, 0, len(buf)) == 0
    assert Ipv4Repr.parse(buf, 0, len(buf)) == r
    assert ipv4.is_fragment(buf, 0) == (mf or frag != 0)


@given(u8, u8, u16, u16, st.binary(max_size=64))
def test_icmp_round_trip(typ, code, ident, seq, payload):
    r = IcmpRepr(typ, code, ident, seq, len(payload))
    buf = bytearray(8) + payload
    r.emit(buf, 0)
    assert icmp.is_checksum_valid(buf, 0, len(buf))
    assert IcmpRepr.parse(buf, 0, len(buf)) == r


@given(u16, u16, u32, u32, u8, u16, u16, st.one_of(st.just(0), u16),
       st.integers(0, 40), st.binary(max_size=64), addr, addr)
def test_tcp_round_trip(sport, dport, seq, ack, flags, window, urgent, mss, options_len, payload,
                        src, dst):
    r = TcpRepr(sport, dport, seq, ack, flags, window, urgent, mss, options_len, len(payload))
    buf = bytearray(b"\xa5" * r.header_len()) + payload
    r.emit(buf, 0, src, dst)
    assert tcp.is_checksum_valid(buf, 0, len(buf), src, 0, dst, 0)
    assert TcpRepr.parse(buf, 0, len(buf), src, dst) == r
    assert tcp.get_mss_option(buf, 0, r.header_len()) == mss


@given(addr)
def test_aton_ntoa_round_trip(a):
    assert ipv4.aton(ipv4.ntoa(a)) == a


@given(st.text(alphabet="0123456789.+- x\n\u0661", max_size=20))
def test_aton_random_text(text):
    try:
        a = ipv4.aton(text)
    except ValueError:
        return
    assert ipv4.ntoa(a) == text  # accepted text is exactly the canonical dotted quad


@given(u32, st.integers(-(2 ** 31) + 1, 2 ** 31 - 1))
def test_seq_properties(a, n):
    b = tcp.seq_add(a, n)
    assert 0 <= b <= 0xFFFFFFFF
    assert tcp.seq_diff(b, a) == n
    assert tcp.seq_diff(a, b) == -n
    assert tcp.seq_lt(a, b) == (n > 0) == tcp.seq_gt(b, a)
    assert tcp.seq_le(a, b) == (n >= 0) == tcp.seq_ge(b, a)
