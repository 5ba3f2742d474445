# dual: cpython micropython
import sys

from tcpip import checksum
from tcpip import _pure
from tcpip.checksum import checksum as cksum
from tcpip._pure import fold
from tcpip.checksum import pseudo_sum, sum16

MICROPYTHON = sys.implementation.name == "micropython"

# Frames captured from a Linux tun device (no checksum offload, so every checksum is complete):
# the kernel connecting from 198.51.100.1 to 198.51.100.2:80. IPv4 packets, no link header.
SYN = bytes.fromhex(
    "4500003c b0cd 4000 4006 3584 c6336401 c6336402"  # IPv4, header checksum 0x3584
    "953c 0050 bd74cedc 00000000 a002 faf0 cc5e 0000"  # TCP SYN, checksum 0xcc5e
    "020405b4 0402 080af64e1416 00000000 01 03030a"  # MSS 1460, SACK-perm, TS, NOP, WS 10
)
# The kernel's data segment after the handshake: PSH|ACK with the 5 bytes "hello" (odd length).
DATA = bytes.fromhex(
    "4500002d b0cf 4000 4006 3591 c6336401 c6336402"
    "953c 0050 bd74cedd 000003e9 5018 faf0 f6d1 0000 68656c6c6f"
)
# RFC 791 header with a known checksum (0xb861), the classic worked example.
IP_HEADER = bytes.fromhex("45000073 00004000 4011b861 c0a80001 c0a800c7")


def ref_sum(data, start, end, acc=0):
    """Independent reference: RFC 1071 word by word, end-around carry after every addition."""
    s = acc
    i = start
    while i + 1 < end:
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
        i += 2
    if i < end:
        s += data[i] << 8
        s = (s & 0xFFFF) + (s >> 16)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def implementations():
    out = [_pure.sum16_bytecode]
    if MICROPYTHON:
        if checksum.IMPLEMENTATION == "viper":
            out.append(checksum.sum16_viper)
    else:
        out.append(_pure.sum16_cpython)
    return out


def test_implementation_chosen():
    if MICROPYTHON:
        assert checksum.IMPLEMENTATION == "viper", checksum.IMPLEMENTATION  # unix port has viper
    else:
        assert checksum.IMPLEMENTATION == "cpython"


def test_rfc1071_section3_example():
    data = bytes([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7])
    for f in implementations():
        assert f(data, 0, 8) == 0xDDF2
        assert f(data, 0, 8, 0) == 0xDDF2
    assert sum16(data, 0, 8) == 0xDDF2
    assert cksum(data, 0, 8) == 0x220D


def test_rfc1071_example_at_every_offset():
    data = bytes([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7])
    for off in range(9):
        buf = bytearray(b"\xa5" * off) + data + b"\x5a\x5a\x5a"
        for f in implementations():
            assert f(buf, off, off + 8) == 0xDDF2, (f, off)


def test_ipv4_header_known_checksum():
    for f in implementations():
        assert f(IP_HEADER, 0, 20) == 0xFFFF  # valid header sums to all ones
    assert cksum(IP_HEADER, 0, 20) == 0
    hdr = bytearray(IP_HEADER)
    hdr[10] = hdr[11] = 0
    assert cksum(hdr, 0, 20) == 0xB861


def check_captured_tcp(packet, expect_ip, expect_tcp):
    ihl = (packet[0] & 15) * 4
    total = (packet[2] << 8) | packet[3]
    assert total == len(packet)
    assert cksum(packet, 0, ihl) == 0
    hdr = bytearray(packet[:ihl])
    hdr[10] = hdr[11] = 0
    assert cksum(hdr, 0, ihl) == expect_ip
    tcp_len = total - ihl
    ph = pseudo_sum(packet, 12, packet, 16, 6, tcp_len)
    ref_ph = ref_sum(packet, 12, 20, 6 + tcp_len)
    assert ph == ref_ph
    assert cksum(packet, ihl, total, ph) == 0  # stored checksum verifies
    seg = bytearray(packet[ihl:])
    seg[16] = seg[17] = 0
    assert cksum(seg, 0, tcp_len, ph) == expect_tcp
    assert (~ref_sum(seg, 0, tcp_len, ref_ph)) & 0xFFFF == expect_tcp
    # the same segment behind an Ethernet header (14 bytes) and at odd offsets
    for pad in (14, 15, 1, 3):
        frame = bytearray(pad) + seg
        assert cksum(frame, pad, pad + tcp_len, ph) == expect_tcp, pad


def test_captured_tcp_syn():
    check_captured_tcp(SYN, 0x3584, 0xCC5E)


def test_captured_tcp_odd_length_payload():
    assert len(DATA) - 20 == 25
    check_captured_tcp(DATA, 0x3591, 0xF6D1)


def test_pseudo_sum_offsets_and_sources():
    # addresses in separate buffers at arbitrary offsets, as the stack keeps them
    src = b"\x00\x00\x00" + bytes([198, 51, 100, 1])
    dst = bytearray([198, 51, 100, 2, 9, 9])
    assert pseudo_sum(src, 3, dst, 0, 6, 40) == pseudo_sum(SYN, 12, SYN, 16, 6, 40)
    ph = bytes([198, 51, 100, 1, 198, 51, 100, 2, 0, 6, 0, 40])
    assert pseudo_sum(src, 3, dst, 0, 6, 40) == ref_sum(ph, 0, 12)
    high = b"\xff\xff\xff\xff"
    assert pseudo_sum(high, 0, high, 0, 255, 0xFFFF) == ref_sum(high * 2 + b"\x00\xff\xff\xff", 0, 12)


if MICROPYTHON:
    import micropython

    @micropython.viper
    def address_of(buf) -> int:
        return int(ptr8(buf))  # noqa: F821 (viper built-in)


def test_every_start_and_length_against_reference():
    # Covers every alignment of the first byte and of the end (the viper core's head/word/tail
    # split). Bytes outside [start, end) are nonzero so a read outside the range would show.
    # x86-64 does not fault on unaligned loads, so this proves the arithmetic; that every ptr16
    # load is at an even address rests on _viper.sum16 stepping one byte first when the start
    # address is odd (reviewed in the armv6m disassembly: ldrh rX, [r4, #0..30], r4 even).
    data = bytearray(100)
    for i in range(100):
        data[i] = (i * 151 + 77) & 0xFF
    if MICROPYTHON:
        residues = set()
        for start in range(8):
            residues.add((address_of(data) + start) & 3)
        assert len(residues) == 4  # starts 0..7 reach every address alignment
    for f in implementations():
        for start in range(8):
            for n in range(71):
                got = f(data, start, start + n)
                assert got == ref_sum(data, start, start + n), (f, start, n)


def test_memoryview_slices_at_odd_offsets():
    data = bytearray(200)
    for i in range(200):
        data[i] = (i * 73 + 5) & 0xFF
    mv = memoryview(data)
    for f in implementations():
        for off in (1, 3, 5, 7, 13):
            view = mv[off:off + 150]
            for start in (0, 1, 2, 3):
                for n in (0, 1, 2, 3, 20, 21, 64, 99):
                    want = ref_sum(data, off + start, off + start + n)
                    assert f(view, start, start + n) == want, (f, off, start, n)
    assert sum16(memoryview(SYN), 20, 40) == ref_sum(SYN, 20, 40)
    assert sum16(bytes(data), 3, 77) == ref_sum(data, 3, 77)


def test_incremental_chunks():
    data = bytearray(301)
    for i in range(301):
        data[i] = (i * 29 + 11) & 0xFF
    whole = ref_sum(data, 0, 301)
    for f in implementations():
        for step in (2, 4, 6, 10, 64, 100):
            acc = 0
            pos = 0
            while pos < 301:
                end = pos + step
                if end > 301:
                    end = 301
                acc = f(data, pos, end, acc)
                pos = end
            assert acc == whole, (f, step)
    # a pseudo-header partial sum chained in as acc
    ph = pseudo_sum(SYN, 12, SYN, 16, 6, 40)
    assert sum16(SYN, 20, 60, ph) == 0xFFFF


def test_zero_and_all_ones_edge_cases():
    for f in implementations():
        assert f(b"", 0, 0) == 0
        assert f(b"abc", 2, 2) == 0  # empty range
        assert f(b"abc", 2, 2, 0x1234) == 0x1234
        assert f(b"", 0, 0, 0x1FFFE) == 0xFFFF  # acc is folded too
        assert f(bytes(64), 0, 64) == 0  # all zero data sums to 0
        assert f(bytes(63), 1, 63) == 0
        assert f(b"\xff\xff", 0, 2) == 0xFFFF
        assert f(b"\xff" * 64, 0, 64) == 0xFFFF  # 32 x 0xffff: a nonzero multiple of 0xffff
        assert f(b"\x00\x01\xff\xfe", 0, 4) == 0xFFFF  # 1 + 0xfffe
        assert f(b"\xff\xff\x00\x01", 0, 4) == 0x0001  # 0xffff + 1 -> carry wraps around
        assert f(b"\x00\x00", 0, 2, 0xFFFF) == 0xFFFF
        assert f(b"\x00\x01", 0, 2, 0xFFFF) == 0x0001
        assert f(b"\xff", 0, 1) == 0xFF00  # odd byte padded with zero
        assert f(b"\x01\xff", 1, 2) == 0xFF00
    assert cksum(b"\xff\xff", 0, 2) == 0
    assert cksum(bytes(4), 0, 4) == 0xFFFF
    assert fold(0) == 0
    assert fold(0xFFFF) == 0xFFFF
    assert fold(0x10000) == 1
    assert fold(0x1FFFE) == 0xFFFF
    assert fold(0xFFFF0000) == 0xFFFF


def test_large_buffer_fold():
    # 64 KiB of 0xff and of a pattern across the viper core's 16 KiB fold blocks (a missing
    # fold would only overflow with 32-bit words: on x86-64 this checks the block arithmetic)
    big = b"\xff" * 65536
    data = bytearray(70001)
    for i in range(0, 70001, 7):
        data[i] = 0xFF
        if i + 1 < 70001:
            data[i + 1] = 0xFE
    for f in implementations():
        assert f(big, 0, 65536) == 0xFFFF
        assert f(big, 1, 65535) == 0xFFFF
        assert f(data, 0, 70001) == ref_sum(data, 0, 70001), f
        assert f(data, 3, 69998) == ref_sum(data, 3, 69998), f


def test_no_allocation_on_micropython():
    if not MICROPYTHON:
        return
    import gc

    data = bytearray(1500)
    for i in range(1500):
        data[i] = i & 0xFF
    mv = memoryview(data)
    src = b"\xc0\xa8\x00\x01"
    funcs = implementations()
    gc.collect()
    gc.disable()
    try:
        for f in funcs:
            f(data, 0, 1500, 0)  # warm up
            before = gc.mem_alloc()
            f(data, 0, 1500, 0)
            f(data, 1, 1499)
            f(mv, 3, 1001, 0x1234)
            after = gc.mem_alloc()
            assert after == before, (f, after - before)
        before = gc.mem_alloc()
        sum16(data, 0, 1500)
        cksum(data, 14, 34)
        pseudo_sum(src, 0, data, 16, 6, 1480)
        after = gc.mem_alloc()
        assert after == before, after - before
    finally:
        gc.enable()
