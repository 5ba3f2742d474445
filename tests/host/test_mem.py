# dual: cpython micropython
import sys

from tcpip import mem
from tcpip import _pure

MICROPYTHON = sys.implementation.name == "micropython"


def pattern(n, seed):
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * 37 + seed) & 0xFF
    return b


def copies():
    out = [mem.copy, _pure.copy_bytecode]
    if not MICROPYTHON:
        out.append(_pure.copy_cpython)
    return out


def equals():
    out = [mem.equal, _pure.equal_bytecode]
    if not MICROPYTHON:
        out.append(_pure.equal_cpython)
    return out


def test_implementation_chosen():
    if MICROPYTHON:
        assert mem.IMPLEMENTATION == "viper", mem.IMPLEMENTATION
    else:
        assert mem.IMPLEMENTATION == "cpython"


def test_copy_every_alignment_and_length():
    # every relative alignment of src and dst: the viper core copies words when both are word
    # aligned, halfwords when both are even, 8 bytes per step otherwise (from 48 bytes on)
    src = pattern(300, 3)
    lengths = list(range(0, 41)) + [47, 48, 49, 55, 63, 64, 65, 79, 100, 131, 200, 255]
    for copy in copies():
        for soff in range(5):
            for doff in range(5):
                for n in lengths:
                    dst = bytearray(b"\xee" * 300)
                    copy(dst, doff, src, soff, n)
                    want = bytearray(b"\xee" * 300)
                    want[doff:doff + n] = src[soff:soff + n]
                    assert dst == want, (copy, soff, doff, n)


def test_copy_full_frame_and_sources():
    src = pattern(1514, 9)
    for copy in copies():
        dst = bytearray(1514)
        copy(dst, 0, src, 0, 1514)
        assert dst == src
        dst = bytearray(1600)
        copy(dst, 2, bytes(src), 14, 1500)  # from bytes
        assert dst[2:1502] == src[14:1514]
        dst = bytearray(1600)
        copy(dst, 1, memoryview(src)[7:], 0, 1000)  # from a memoryview at an odd offset
        assert dst[1:1001] == src[7:1007]
        dst = bytearray(1600)
        copy(memoryview(dst)[3:], 0, src, 0, 100)  # into a memoryview
        assert dst[3:103] == src[:100]


def test_copy_zero_or_negative_length_is_noop():
    for copy in copies():
        dst = bytearray(b"abc")
        copy(dst, 0, b"xyz", 0, 0)
        assert dst == b"abc"
    dst = bytearray(b"abc")
    mem.copy(dst, 0, b"xyz", 0, -3)
    assert dst == b"abc"


def test_copy_overlap_same_buffer():
    for copy in copies():
        for soff, doff in ((0, 1), (1, 0), (0, 5), (5, 0), (2, 6), (6, 2), (4, 4), (3, 40)):
            buf = pattern(80, 1)
            want = bytearray(buf)
            want[doff:doff + 30] = bytes(buf[soff:soff + 30])
            copy(buf, doff, buf, soff, 30)
            assert buf == want, (copy, soff, doff)


def test_copy_overlap_two_views_of_one_buffer():
    # dst and src are different objects over the same memory (memmove semantics); not
    # supported by copy_bytecode (MicroPython without viper), documented in mem.py.
    if mem.IMPLEMENTATION == "bytecode":
        return
    for soff, doff in ((0, 3), (3, 0), (0, 8), (8, 0), (1, 2)):
        buf = pattern(80, 2)
        want = bytearray(buf)
        want[doff:doff + 40] = bytes(buf[soff:soff + 40])
        mv = memoryview(buf)
        mem.copy(mv[doff:], 0, mv[soff:], 0, 40)
        assert buf == want, (soff, doff)


def test_equal():
    a = b"\xc0\xa8\x00\x01"
    b = bytearray(b"\x00\x00\xc0\xa8\x00\x01\x00")
    for equal in equals():
        assert equal(a, 0, b, 2, 4) is True
        assert equal(b, 2, a, 0, 4) is True
        assert equal(a, 0, b, 1, 4) is False
        assert equal(a, 0, b, 2, 0) is True
        assert equal(a, 3, b, 5, 1) is True
        assert equal(memoryview(b)[1:], 1, a, 0, 4) is True
        assert equal(a, 0, b"\xc0\xa8\x00\x02", 0, 4) is False
        assert equal(a, 0, b"\x00\xa8\x00\x01", 0, 4) is False
        mac = b"\xff" * 6
        assert equal(bytearray(b"\x00" + mac), 1, mac, 0, 6) is True
        long_a = pattern(300, 5)
        long_b = bytearray(long_a)
        assert equal(long_a, 0, long_b, 0, 300) is True
        long_b[299] ^= 1
        assert equal(long_a, 0, long_b, 0, 300) is False
        assert equal(long_a, 0, long_b, 0, 299) is True


def test_no_allocation_on_micropython():
    if not MICROPYTHON:
        return
    import gc

    from tcpip import checksum

    src = pattern(1514, 4)
    dst = bytearray(1514)
    mv = memoryview(dst)
    ip = b"\xc0\xa8\x00\x01"
    funcs = (mem.copy, _pure.copy_bytecode)
    gc.collect()
    gc.disable()
    try:
        for copy in funcs:
            copy(dst, 0, src, 0, 1514)  # warm up
            before = gc.mem_alloc()
            copy(dst, 0, src, 0, 1514)
            copy(dst, 1, src, 3, 1500)
            copy(mv, 7, src, 0, 100)
            copy(dst, 10, dst, 0, 1000)
            after = gc.mem_alloc()
            assert after == before, (copy, after - before)
        for equal in (mem.equal, _pure.equal_bytecode):
            equal(ip, 0, src, 0, 4)
            before = gc.mem_alloc()
            equal(ip, 0, src, 0, 4)
            equal(src, 0, src, 0, 1514)
            after = gc.mem_alloc()
            assert after == before, (equal, after - before)
        checksum.sum16(src, 0, 1514)
        before = gc.mem_alloc()
        checksum.sum16(src, 0, 1514)
        checksum.sum16(mv, 3, 1001, 0x1234)
        checksum.checksum(src, 14, 34)
        after = gc.mem_alloc()
        assert after == before, after - before
    finally:
        gc.enable()
