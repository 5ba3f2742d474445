"""The pure-Python implementations of the cores that are viper on MicroPython >= 1.28
(tcpip._viper): the RFC 1071 sum, byte copy and compare, and the header-prediction kernels. Used
on CPython and on MicroPython without viper; a board with viper never imports this module.
  sum16_bytecode  a plain loop that allocates nothing (MicroPython without viper)
  sum16_cpython   int.from_bytes and a modulo, no Python-level loop (CPython)
  copy_* equal_*  tcpip.mem's, the same split
  match_py build_py  tcpip.fastpath's kernels (they slice: CPython only)
All give the results of the viper cores (tests/host/test_checksum.py, test_mem.py,
test_fastpath.py).
"""
try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_BLOCK = const(16384)  # the bytecode loop folds every 16 KiB so sums stay small ints on rp2


def fold(acc):
    """Fold a nonnegative sum to 16 bits with end-around carry (RFC 1071 2(D)); 0 only for 0."""
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def sum16_bytecode(buf, start, end, acc=0):
    """sum16 as a plain loop (any runtime; the MicroPython fallback)."""
    n = end - start
    if n <= 0:
        return fold(acc)
    s = fold(acc)
    stop = start + (n & ~1)  # end of the whole 16-bit words
    i = start
    while i < stop:
        blk = i + _BLOCK
        if blk > stop:
            blk = stop
        for j in range(i, blk, 2):
            s += (buf[j] << 8) + buf[j + 1]
        s = (s & 0xFFFF) + (s >> 16)
        i = blk
    if n & 1:
        s += buf[stop] << 8  # RFC 1071 4.1: odd trailing byte padded with a zero byte
    return fold(s)


def sum16_cpython(buf, start, end, acc=0):
    """sum16 via int.from_bytes: 2**16 == 1 (mod 0xffff), so the big number is congruent to the
    sum of its 16-bit words. The one's complement sum is 0 only when every word (and acc) is 0;
    any other multiple of 0xffff is 0xffff."""
    n = end - start
    if n <= 0:
        return fold(acc)
    v = int.from_bytes(buf[start:end], "big")
    if n & 1:
        v <<= 8  # pad the odd trailing byte with zero
    v += acc
    if v == 0:
        return 0
    return v % 0xFFFF or 0xFFFF


def copy_bytecode(dst, doff, src, soff, n):
    """copy as a loop: allocation-free on MicroPython, slow."""
    if dst is src and doff > soff:
        for i in range(n - 1, -1, -1):
            dst[doff + i] = src[soff + i]
    else:
        for i in range(n):
            dst[doff + i] = src[soff + i]


def equal_bytecode(a, aoff, b, boff, n):
    """equal as a loop: allocation-free on MicroPython."""
    for i in range(n):
        if a[aoff + i] != b[boff + i]:
            return False
    return True


def copy_cpython(dst, doff, src, soff, n):
    """copy between memoryviews: exactly n bytes, or ValueError when either side has fewer or
    its items are not bytes. (A slice assignment to a bytearray resizes it when the part
    assigned is shorter, or longer: an array of 4-byte items; a ring must never change size.)
    CPython copies like memmove when the two share memory."""
    if n <= 0:
        return
    memoryview(dst)[doff:doff + n] = memoryview(src)[soff:soff + n]


def equal_cpython(a, aoff, b, boff, n):
    """equal by slice comparison."""
    return a[aoff:aoff + n] == b[boff:boff + n]


def _fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _sum_words(b, start, end):
    """RFC 1071 sum of b[start:end] as big-endian words (odd tail padded), folded."""
    v = int.from_bytes(bytes(b[start:end]), "big")
    if (end - start) & 1:
        v <<= 8
    if v == 0:
        return 0
    return v % 0xFFFF or 0xFFFF


def match_py(f, n, th, r_nxt, s_una, s_max):
    """-1, or plen | acked << 11 (acked = SEG.ACK - SND.UNA) when frame f (n bytes) is an in-order
    ACK / data segment of th's connection (the conditions above)."""
    for i in range(50):
        if (f[i] ^ th[64 + i]) & th[114 + i]:
            return -1
    total = f[16] << 8 | f[17]
    if total < 40 or total + 14 > n or total > 2087:
        return -1
    lo = (th[62] << 8 | th[63]) + (r_nxt & 0xFFFF)
    hi = (th[60] << 8 | th[61]) + (r_nxt >> 16) + (lo >> 16)
    if (f[38] << 8 | f[39]) != hi & 0xFFFF or (f[40] << 8 | f[41]) != lo & 0xFFFF:
        return -1
    lo = (f[44] << 8 | f[45]) - (th[58] << 8 | th[59]) - (s_una & 0xFFFF)
    hi = (f[42] << 8 | f[43]) - (th[56] << 8 | th[57]) - (s_una >> 16) + (lo >> 16)
    acked = (hi & 0xFFFF) << 16 | (lo & 0xFFFF)
    if acked >= 0x80000000:
        acked -= 0x100000000  # as a 32-bit machine word: "before SND.UNA"
    plen = total - 40
    if acked < 0 or acked > s_max - s_una or (acked == 0 and plen == 0):
        return -1
    if _sum_words(f, 14, 34) != 0xFFFF:
        return -1
    acc = (f[26] << 8 | f[27]) + (f[28] << 8 | f[29]) + (f[30] << 8 | f[31]) + (f[32] << 8 | f[33])
    if _fold(_sum_words(f, 34, 14 + total) + acc + 6 + total - 20) != 0xFFFF:
        return -1
    return plen | acked << 11


def build_py(f, th, seq, ack, fw, plen):
    """The headers of th's connection into f[0:54] (payload already at f[54:54 + plen]): SEQ =
    send base + seq, ACK = receive base + ack (0 without the ACK flag), flags = fw >> 16, window
    = fw & 0xffff, a new IPv4 identification, both checksums. Returns the frame length (padded
    with zeros to the Ethernet minimum of 60)."""
    f[0:54] = th[0:54]
    total = 40 + plen
    f[16] = total >> 8
    f[17] = total & 0xFF
    v = (th[54] << 8 | th[55]) + 1
    th[54] = (v >> 8) & 0xFF
    th[55] = v & 0xFF
    f[18] = th[54]
    f[19] = th[55]
    lo = (th[58] << 8 | th[59]) + (seq & 0xFFFF)
    hi = (th[56] << 8 | th[57]) + (seq >> 16) + (lo >> 16)
    f[38] = (hi >> 8) & 0xFF
    f[39] = hi & 0xFF
    f[40] = (lo >> 8) & 0xFF
    f[41] = lo & 0xFF
    flags = fw >> 16
    if flags & 0x10:
        lo = (th[62] << 8 | th[63]) + (ack & 0xFFFF)
        hi = (th[60] << 8 | th[61]) + (ack >> 16) + (lo >> 16)
        f[42] = (hi >> 8) & 0xFF
        f[43] = hi & 0xFF
        f[44] = (lo >> 8) & 0xFF
        f[45] = lo & 0xFF
    else:
        f[42] = 0
        f[43] = 0
        f[44] = 0
        f[45] = 0
    f[47] = flags
    f[48] = (fw >> 8) & 0xFF
    f[49] = fw & 0xFF
    c = ~_sum_words(f, 14, 34) & 0xFFFF
    f[24] = c >> 8
    f[25] = c & 0xFF
    acc = (f[26] << 8 | f[27]) + (f[28] << 8 | f[29]) + (f[30] << 8 | f[31]) + (f[32] << 8 | f[33])
    c = ~_fold(_sum_words(f, 34, 54 + plen) + acc + 26 + plen) & 0xFFFF
    f[50] = c >> 8
    f[51] = c & 0xFF
    n = 54 + plen
    while n < 60:
        f[n] = 0
        n += 1
    return n
