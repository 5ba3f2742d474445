# dual: cpython micropython
"""TCP header (RFC 9293 3.1): a real Linux SYN-ACK parsed, rebuilt, truncated; MSS option walking
in the manner of Linux tcp_parse_options; sequence numbers around the 2**32 wrap (RFC 9293 3.4)."""
from wirecheck import expect_value_error, heap_locked, unhex
from wirerep import tcp
from wirerep.tcp import TcpRepr


# Linux SYN-ACK 192.168.69.1:80 -> 192.168.69.2:49500 answering a SYN that offered only MSS:
# window 64240, MSS 1460, checksum 0x588a over the pseudo header.
SYNACK = unhex("0050 c15c d1b2c3a4 0001e241 6012 faf0 588a 0000 020405b4")
IP_A = unhex("c0a84501")
IP_B = unhex("c0a84502")
# Linux SYN options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (header 40 bytes).
LINUX_SYN_OPTIONS = unhex("020405b4 0402080a 00a1b2c3 00000000 01030307")


def segment(options, header_len=None, tail=b""):
    """A SYN with the given option bytes; header_len defaults to 20 + len(options)."""
    if header_len is None:
        header_len = 20 + len(options)
    buf = bytearray(20 + len(options) + len(tail))
    tcp.emit_header(buf, 0, 1000, 80, 1, 0, tcp.FLAG_SYN, 512, header_len)
    for i in range(len(options)):
        buf[20 + i] = options[i]
    for i in range(len(tail)):
        buf[20 + len(options) + i] = tail[i]
    return buf


def mss_of(options, header_len=None, tail=b""):
    buf = segment(options, header_len, tail)
    return tcp.get_mss_option(buf, 0, tcp.get_header_len(buf, 0))


def test_parse_fields():
    r = TcpRepr.parse(SYNACK, 0, len(SYNACK), IP_A, IP_B)
    assert r.src_port == 80 and r.dst_port == 49500
    assert r.seq == 0xd1b2c3a4 and r.ack == 0x0001e241
    assert r.flags == tcp.FLAG_SYN | tcp.FLAG_ACK
    assert r.window == 64240 and r.urgent == 0
    assert r.mss == 1460
    assert r.options_len == 4 and r.payload_len == 0
    assert r.header_len() == 24 and r.buffer_len() == 24


def test_accessors():
    assert tcp.get_src_port(SYNACK, 0) == 80
    assert tcp.get_dst_port(SYNACK, 0) == 49500
    assert tcp.get_seq(SYNACK, 0) == 0xd1b2c3a4
    assert tcp.get_ack(SYNACK, 0) == 0x1e241
    assert tcp.get_header_len(SYNACK, 0) == 24
    assert tcp.get_flags(SYNACK, 0) == 0x12
    assert tcp.get_window(SYNACK, 0) == 64240
    assert tcp.get_checksum(SYNACK, 0) == 0x588a
    assert tcp.get_urgent(SYNACK, 0) == 0
    assert tcp.get_mss_option(SYNACK, 0, 24) == 1460
    assert tcp.is_checksum_valid(SYNACK, 0, 24, IP_A, 0, IP_B, 0)
    assert not tcp.is_checksum_valid(SYNACK, 0, 24, IP_A, 0, unhex("c0a84503"), 0)
    # At an odd offset inside a larger buffer, and with addresses inside an IPv4 header.
    buf = b"\x00" * 5 + SYNACK
    assert tcp.get_seq(buf, 5) == 0xd1b2c3a4 and tcp.get_mss_option(buf, 5, 24) == 1460
    addrs = b"\xee" + IP_A + IP_B
    assert tcp.is_checksum_valid(buf, 5, 24, addrs, 1, addrs, 5)


def test_emit_matches_literal():
    r = TcpRepr(80, 49500, 0xd1b2c3a4, 0x1e241, tcp.FLAG_SYN | tcp.FLAG_ACK, 64240, 0, 1460)
    buf = bytearray(b"\xa5" * 30)
    r.emit(buf, 2, IP_A, IP_B)
    assert bytes(buf[2:26]) == SYNACK
    assert bytes(buf[:2]) == b"\xa5\xa5" and bytes(buf[26:]) == b"\xa5" * 4
    # Without addresses the checksum is left 0.
    buf = bytearray(b"\xa5" * 24)
    r.emit(buf, 0)
    assert bytes(buf[:16]) == SYNACK[:16] and bytes(buf[16:18]) == b"\x00\x00"
    assert bytes(buf[18:]) == SYNACK[18:]


def test_emit_functions_match_literal():
    buf = bytearray(b"\xa5" * 26)
    tcp.emit_header(buf, 0, 80, 49500, 0xd1b2c3a4, 0x1e241, 0x12, 64240, 24)
    tcp.emit_mss_option(buf, 0, 1460)
    assert bytes(buf[24:]) == b"\xa5\xa5"
    tcp.fill_checksum(buf, 0, 24, IP_A, 0, IP_B, 0)
    assert bytes(buf[:24]) == SYNACK


def test_setters():
    buf = bytearray(b"\xa5" * 24)
    tcp.set_src_port(buf, 0, 80)
    tcp.set_dst_port(buf, 0, 49500)
    tcp.set_seq(buf, 0, 0xd1b2c3a4)
    tcp.set_ack(buf, 0, 0x1e241)
    tcp.set_header_len(buf, 0, 24)
    tcp.set_flags(buf, 0, 0x12)
    tcp.set_window(buf, 0, 64240)
    tcp.set_checksum(buf, 0, 0x588a)
    tcp.set_urgent(buf, 0, 0)
    tcp.emit_mss_option(buf, 0, 1460)
    assert bytes(buf) == SYNACK


def test_truncated():
    for n in range(len(SYNACK)):
        expect_value_error(TcpRepr.parse, SYNACK, 0, n)
        expect_value_error(TcpRepr.parse, SYNACK, 0, n, IP_A, IP_B)


def test_bad_header_len_and_checksum():
    buf = bytearray(SYNACK)
    buf[12] = 0x40  # 16 bytes: below the minimum
    expect_value_error(TcpRepr.parse, buf, 0, 24)
    buf[12] = 0xf0  # 60 bytes: beyond the segment
    expect_value_error(TcpRepr.parse, buf, 0, 24)
    buf = bytearray(SYNACK)
    buf[15] ^= 0x01
    expect_value_error(TcpRepr.parse, buf, 0, 24, IP_A, IP_B)
    TcpRepr.parse(buf, 0, 24)  # no addresses: the checksum is not looked at
    expect_value_error(TcpRepr.parse, SYNACK, 0, 24, IP_A, unhex("c0a84503"))


def test_payload_round_trip_with_checksum():
    data = b"GET / HTTP/1.0\r\n\r\n"
    r = TcpRepr(49500, 80, 0x1e241, 0xd1b2c3a5, tcp.FLAG_ACK | tcp.FLAG_PSH, 502, payload_len=len(data))
    buf = bytearray(20 + len(data))
    for i in range(len(data)):
        buf[20 + i] = data[i]
    r.emit(buf, 0, IP_B, IP_A)
    assert tcp.is_checksum_valid(buf, 0, len(buf), IP_B, 0, IP_A, 0)
    assert TcpRepr.parse(buf, 0, len(buf), IP_B, IP_A) == r
    assert r.header_len() == 20 and r.buffer_len() == 20 + len(data)


def test_options_len_normalised():
    assert TcpRepr(1, 2, 3, 4, 2, 5, mss=536).options_len == 4
    assert TcpRepr(1, 2, 3, 4, 2, 5, mss=536, options_len=0).options_len == 4
    assert TcpRepr(1, 2, 3, 4, 2, 5, options_len=5).options_len == 8
    assert TcpRepr(1, 2, 3, 4, 16, 5).options_len == 0
    expect_value_error(TcpRepr, 1, 2, 3, 4, 2, 5, 0, 0, 44)
    # Options beyond MSS are zero-filled (RFC 9293 3.1 padding) and parse back the same.
    r = TcpRepr(1, 2, 3, 4, 2, 5, 0, 1460, 12)
    buf = bytearray(b"\xa5" * 32)
    r.emit(buf, 0)
    assert bytes(buf[20:32]) == b"\x02\x04\x05\xb4" + b"\x00" * 8
    assert TcpRepr.parse(buf, 0, 32) == r


def test_linux_syn_options():
    assert mss_of(LINUX_SYN_OPTIONS) == 1460
    r = TcpRepr.parse(segment(LINUX_SYN_OPTIONS), 0, 40)
    assert r.mss == 1460 and r.options_len == 20 and r.payload_len == 0


def test_mss_option_cases():
    cases = (
        (b"", 0),
        (b"\x02\x04\x05\xb4", 1460),
        (b"\x01\x01\x02\x04\x02\x18\x00\x00", 536),            # NOP padding first
        (b"\x03\x03\x07\x01\x02\x04\x05\xb4", 1460),            # window scale, NOP, MSS
        (b"\xfe\x04\xab\xcd\x02\x04\x05\xb4", 1460),            # unknown kind skipped by length
        (b"\x1e\x06\x00\x00\x00\x00\x02\x04\x01\x00\x00\x00", 256),  # unknown, 6 bytes long
        (b"\x00\x00\x00\x00\x02\x04\x05\xb4", 0),               # END stops the walk
        (b"\x00\x02\x04\x05\xb4\x00\x00\x00", 0),
        (b"\x1e\x00\x02\x04\x05\xb4\x00\x00", 0),               # length 0: "silly", stop
        (b"\x1e\x01\x02\x04\x05\xb4\x00\x00", 0),               # length 1: "silly", stop
        (b"\x02\x00\x05\xb4", 0),                                # MSS of length 0
        (b"\x02\x01\x05\xb4", 0),                                # MSS of length 1
        (b"\x02\x03\x05\x01", 0),                                # MSS of length 3, then NOP
        (b"\x02\x06\x05\xb4\x00\x00\x02\x04\x02\x00\x00\x00", 512),  # length 6 skipped, next taken
        (b"\x02\x05\x05\xb4\x00\x00\x00\x00", 0),                # wrong length, then END
        (b"\x02\x04\x05\xb4\x02\x04\x02\x18", 536),             # the last MSS wins (as Linux)
        (b"\x02\x04\x05\xb4\x1e\x00\x00\x00", 1460),            # kept when a later option is silly
        (b"\x01\x01\x01\x02", 0),                                # kind without its length byte
        (b"\x01\x01\x02\x04", 0),                                # MSS value beyond the header
        (b"\x01\x02\x08\x00", 0),                                # length running past the header
        (b"\x1e\xff\x02\x04\x05\xb4\x00\x00", 0),
        (b"\x02\x04\x00\x00", 0),                                # MSS 0 means absent
        (b"\x02\x04\xff\xff", 65535),
        (b"\x01" * 40, 0),
    )
    for options, want in cases:
        got = mss_of(options)
        assert got == want, (options, got, want)


def test_mss_option_respects_header_len():
    # The bytes after the header (here: payload) are never read as options.
    assert mss_of(b"", 20, b"\x02\x04\x05\xb4") == 0
    assert mss_of(b"\x01\x01\x02\x04", 24, b"\x05\xb4\x00\x00") == 0
    buf = segment(b"\x02\x04\x05\xb4")
    assert tcp.get_mss_option(buf, 0, 20) == 0
    assert tcp.get_mss_option(buf, 0, 0) == 0
    assert tcp.get_mss_option(buf, 0, 60) == 1460   # header_len beyond the buffer: no IndexError
    assert tcp.get_mss_option(buf, 0, 1000) == 1460
    assert tcp.get_mss_option(b"\x00" * 10, 0, 60) == 0


def test_mss_option_never_raises_small_alphabet():
    # Every 4-byte option area over an alphabet of the interesting byte values.
    alphabet = (0, 1, 2, 3, 4, 5, 0xff)
    buf = segment(b"\x00\x00\x00\x00")
    for a in alphabet:
        for b in alphabet:
            for c in alphabet:
                for d in alphabet:
                    buf[20], buf[21], buf[22], buf[23] = a, b, c, d
                    got = tcp.get_mss_option(buf, 0, 24)
                    want = (c << 8 | d) if (a == 2 and b == 4) else 0
                    if a == 1 and b == 1:
                        want = 0
                    assert got == want, (a, b, c, d, got)


def test_seq_add():
    assert tcp.seq_add(0, 1) == 1
    assert tcp.seq_add(0xffffffff, 1) == 0
    assert tcp.seq_add(0xfffffff0, 0x20) == 0x10
    assert tcp.seq_add(0x10, -0x20) == 0xfffffff0
    assert tcp.seq_add(0xd1b2c3a4, 0) == 0xd1b2c3a4


def test_seq_diff():
    assert tcp.seq_diff(5, 3) == 2
    assert tcp.seq_diff(3, 5) == -2
    assert tcp.seq_diff(0x10, 0xfffffff0) == 0x20
    assert tcp.seq_diff(0xfffffff0, 0x10) == -0x20
    assert tcp.seq_diff(0, 0xffffffff) == 1
    assert tcp.seq_diff(0x7fffffff, 0) == 0x7fffffff
    # Exactly half the space apart is ambiguous; like Linux (s32)(a - b) it reads as negative.
    assert tcp.seq_diff(0x80000000, 0) == -0x80000000
    assert tcp.seq_diff(0, 0x80000000) == -0x80000000


def test_seq_compare_around_wrap():
    a, b = 0xfffffff0, 0x10  # b is 32 after a, across the wrap
    assert tcp.seq_lt(a, b) and tcp.seq_le(a, b)
    assert tcp.seq_gt(b, a) and tcp.seq_ge(b, a)
    assert not tcp.seq_lt(b, a) and not tcp.seq_gt(a, b)
    assert not tcp.seq_le(b, a) and not tcp.seq_ge(a, b)
    for x in (0, 1, 0x7fffffff, 0x80000000, 0xffffffff):
        assert tcp.seq_le(x, x) and tcp.seq_ge(x, x)
        assert not tcp.seq_lt(x, x) and not tcp.seq_gt(x, x)
        y = tcp.seq_add(x, 1)
        assert tcp.seq_lt(x, y) and tcp.seq_gt(y, x), x
        z = tcp.seq_add(x, 0x7fffffff)
        assert tcp.seq_lt(x, z) and tcp.seq_gt(z, x), x


def test_flags_and_options_constants():
    assert (tcp.FLAG_FIN, tcp.FLAG_SYN, tcp.FLAG_RST, tcp.FLAG_PSH, tcp.FLAG_ACK, tcp.FLAG_URG,
            tcp.FLAG_ECE, tcp.FLAG_CWR) == (1, 2, 4, 8, 16, 32, 64, 128)
    assert (tcp.OPT_END, tcp.OPT_NOP, tcp.OPT_MSS, tcp.OPT_WSCALE, tcp.OPT_SACK_PERM,
            tcp.OPT_TIMESTAMP) == (0, 1, 2, 3, 4, 8)
    assert tcp.flags_str(0x12) == "SYN|ACK"
    assert tcp.flags_str(0) == "0"


def test_repr_text_and_eq():
    r = TcpRepr.parse(SYNACK, 0, 24)
    text = repr(r)
    assert text == ("TcpRepr(src_port=80, dst_port=49500, seq=3518153636, ack=123457, flags=SYN|ACK,"
                    " window=64240, urgent=0, mss=1460, options_len=4, payload_len=0)"), text
    assert r == TcpRepr(80, 49500, 0xd1b2c3a4, 0x1e241, 0x12, 64240, 0, 1460, 4, 0)
    assert r != TcpRepr(80, 49500, 0xd1b2c3a4, 0x1e241, 0x12, 64240, 0, 1400, 4, 0)


def test_hot_path_allocates_nothing():
    buf = bytearray(SYNACK)
    out = [0, 0, 0, 0]

    def work():
        tcp.emit_header(buf, 0, 80, 49500, 0x12345, 0x1e241, 0x12, 64240, 24)
        tcp.emit_mss_option(buf, 0, 1460)
        tcp.fill_checksum(buf, 0, 24, IP_A, 0, IP_B, 0)
        out[0] = tcp.is_checksum_valid(buf, 0, 24, IP_A, 0, IP_B, 0)
        out[1] = tcp.get_mss_option(buf, 0, tcp.get_header_len(buf, 0))
        out[2] = tcp.get_src_port(buf, 0) + tcp.get_dst_port(buf, 0) + tcp.get_window(buf, 0)
        out[3] = tcp.seq_lt(tcp.get_seq(buf, 0), tcp.get_ack(buf, 0))

    heap_locked(work)
    assert out == [True, 1460, 80 + 49500 + 64240, True]
