"""Viper cores for checksum.py and mem.py. Imported only on MicroPython >= 1.28.

Rules kept here (docs/ARCHITECTURE.md, "What things cost on an RP2040" and "Runtime rules"):
- every 16-bit load is at an even address and every 32-bit load/store at a multiple of 4 (the
  Cortex-M0+ faults on unaligned accesses; x86-64 would hide the bug); everything else is ptr8;
- machine words are 32 bits on the RP2040 and 64 on x86-64: sums stay below 2**30 so both give
  the same results (and an int result never needs a heap object on rp2);
- viper ignores default argument values (a call must pass every argument);
- no bounds checks: callers keep offsets and lengths inside the buffers;
- speed: only the first two locals (the first two arguments) live in registers on Thumb, so the
  loop pointer and loop bound are arguments reused as addresses. Addresses are held in `int`
  (signed): RAM and flash addresses are below 2**31 on the RP2040 and below 2**63 on x86-64.
"""
import micropython


@micropython.viper
def sum16(a: int, stop: int, buf, acc: int) -> int:
    """RFC 1071 sum of buf[a:stop] (big-endian 16-bit words from a) plus acc, folded to 16 bits.

    Argument order differs from checksum.sum16 so a and stop get the registers.
    """
    base = int(ptr8(buf))
    a += base  # a and e are addresses from here on
    e = stop + base
    # The words are loaded little-endian from even *addresses*: a byte at an even address adds
    # b, at an odd address b << 8. That is the big-endian sum byte-swapped when buf[start] is at
    # an even address and the big-endian sum itself when it is at an odd one (RFC 1071 2(B):
    # swapping the bytes of every word swaps the sum, whatever the machine's byte order).
    odd = a & 1
    t = 0
    if odd and a < e:
        t = ptr8(a)[0] << 8
        a += 1
    # a is even now: ptr16 loads at a + 2k are aligned. 16 of them per pass (32 bytes); a fold
    # after each 16 KiB keeps t < 0x20000 + 512 * 16 * 0xffff < 2**30.
    while e - a >= 32:
        stop = a + 16384
        if stop > e - 31:
            stop = e - 31
        while a < stop:
            t += (ptr16(a)[0] + ptr16(a)[1] + ptr16(a)[2] + ptr16(a)[3]
                  + ptr16(a)[4] + ptr16(a)[5] + ptr16(a)[6] + ptr16(a)[7]
                  + ptr16(a)[8] + ptr16(a)[9] + ptr16(a)[10] + ptr16(a)[11]
                  + ptr16(a)[12] + ptr16(a)[13] + ptr16(a)[14] + ptr16(a)[15])
            a += 32
        t = (t & 0xFFFF) + (t >> 16)
    while a < e - 1:
        t += ptr16(a)[0]
        a += 2
    if a < e:
        t += ptr8(a)[0]  # last byte at an even address: the low byte (padded with zero)
    # RFC 1071 2(D): add the deferred carries back in. Folding never turns a nonzero sum into 0.
    t = (t & 0xFFFF) + (t >> 16)
    t = (t & 0xFFFF) + (t >> 16)
    if not odd:
        t = ((t & 0xFF) << 8) | (t >> 8)
    t += acc
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


# Copy loops: the destination and source addresses are the first two arguments, so both live in
# registers (Thumb viper keeps only the first two locals there; the rest are stack slots, which
# made a one-loop copy of misaligned buffers cost ~26 cycles per byte on the RP2040). Each copies
# while d < stop in steps of its unrolled width and returns where it stopped.
@micropython.viper
def _copy32(d: int, s: int, stop: int) -> int:
    """d and s at multiples of 4: 32 bytes per step (~3.4 cycles/byte on the RP2040)."""
    while d < stop:
        ptr32(d)[0] = ptr32(s)[0]
        ptr32(d)[1] = ptr32(s)[1]
        ptr32(d)[2] = ptr32(s)[2]
        ptr32(d)[3] = ptr32(s)[3]
        ptr32(d)[4] = ptr32(s)[4]
        ptr32(d)[5] = ptr32(s)[5]
        ptr32(d)[6] = ptr32(s)[6]
        ptr32(d)[7] = ptr32(s)[7]
        d += 32
        s += 32
    return d


@micropython.viper
def _copy16(d: int, s: int, stop: int) -> int:
    """d and s even: 16 bytes per step (~4.9 cycles/byte)."""
    while d < stop:
        ptr16(d)[0] = ptr16(s)[0]
        ptr16(d)[1] = ptr16(s)[1]
        ptr16(d)[2] = ptr16(s)[2]
        ptr16(d)[3] = ptr16(s)[3]
        ptr16(d)[4] = ptr16(s)[4]
        ptr16(d)[5] = ptr16(s)[5]
        ptr16(d)[6] = ptr16(s)[6]
        ptr16(d)[7] = ptr16(s)[7]
        d += 16
        s += 16
    return d


@micropython.viper
def _copy8(d: int, s: int, stop: int) -> int:
    """Any alignment: 8 bytes per step (~7.9 cycles/byte)."""
    while d < stop:
        ptr8(d)[0] = ptr8(s)[0]
        ptr8(d)[1] = ptr8(s)[1]
        ptr8(d)[2] = ptr8(s)[2]
        ptr8(d)[3] = ptr8(s)[3]
        ptr8(d)[4] = ptr8(s)[4]
        ptr8(d)[5] = ptr8(s)[5]
        ptr8(d)[6] = ptr8(s)[6]
        ptr8(d)[7] = ptr8(s)[7]
        d += 8
        s += 8
    return d


@micropython.viper
def copy(dst, doff: int, src, soff: int, n: int):
    """dst[doff:doff+n] = src[soff:soff+n] with memmove semantics (any overlap), no allocation."""
    if n <= 0:
        return
    doff += int(ptr8(dst))  # the destination address from here on (a register local)
    s = int(ptr8(src)) + soff
    if doff == s:
        return
    e = doff + n
    if doff < s or doff >= s + n:
        delta = s - doff
        if n >= 48:
            # whole words where both are word aligned, halfwords where both are even, else 8
            # bytes per step; loads and stores stay aligned (the Cortex-M0+ faults otherwise)
            if not (delta & 1):
                while doff & 3:
                    ptr8(doff)[0] = ptr8(doff + delta)[0]
                    doff += 1
            if not (delta & 3):
                doff = int(_copy32(doff, doff + delta, e - 31))
            elif not (delta & 1):
                doff = int(_copy16(doff, doff + delta, e - 15))
            else:
                doff = int(_copy8(doff, doff + delta, e - 7))
        while doff < e:
            ptr8(doff)[0] = ptr8(doff + delta)[0]
            doff += 1
    else:
        # dst starts inside src: copy from the end, a byte at a time (a rare case).
        s += n
        while e > doff:
            e -= 1
            s -= 1
            ptr8(e)[0] = ptr8(s)[0]


@micropython.viper
def equal(a, aoff: int, b, boff: int, n: int) -> bool:
    """a[aoff:aoff+n] == b[boff:boff+n], no allocation."""
    aoff += int(ptr8(a))  # addresses from here on
    boff += int(ptr8(b))
    e = aoff + n
    while aoff < e:
        if ptr8(aoff)[0] != ptr8(boff)[0]:
            return False
        aoff += 1
        boff += 1
    return True


# -- header prediction (tcpip.fastpath: the layout of the template `th` and the Python twins) -----
@micropython.viper
def hp_match(f, n: int, th, r_nxt: int, s_una: int, s_max: int) -> int:
    """fastpath.match: -1, or plen | acked << 11 for an in-order ACK / data segment of th's
    connection with valid checksums and the predicted window."""
    p = ptr8(f)
    q = ptr8(th)
    if int(p) & 1:
        return -1  # the checksum below loads 16-bit words at even addresses only
    # the fixed fields: what th[64:114] expects where th[114:164] says (fastpath's layout)
    i = 0
    while i < 50:
        if (p[i] ^ q[64 + i]) & q[114 + i]:
            return -1
        i += 1
    total = (p[16] << 8) | p[17]
    if total < 40 or total + 14 > n or total > 2087:
        return -1
    # SEG.SEQ == RCV.NXT: the receive base (th[60:64]) plus r_nxt, in 16-bit halves
    lo = ((q[62] << 8) | q[63]) + (r_nxt & 0xFFFF)
    hi = ((q[60] << 8) | q[61]) + (r_nxt >> 16) + (lo >> 16)
    if ((p[38] << 8) | p[39]) != (hi & 0xFFFF) or ((p[40] << 8) | p[41]) != (lo & 0xFFFF):
        return -1
    # SEG.ACK - SND.UNA, from the send base (th[56:60]); 0 <= acked <= SND.MAX - SND.UNA
    lo = ((p[44] << 8) | p[45]) - ((q[58] << 8) | q[59]) - (s_una & 0xFFFF)
    hi = ((p[42] << 8) | p[43]) - ((q[56] << 8) | q[57]) - (s_una >> 16) + (lo >> 16)
    acked = ((hi & 0xFFFF) << 16) | (lo & 0xFFFF)
    plen = total - 40
    if acked < 0 or acked > s_max - s_una or (acked == 0 and plen == 0):
        return -1
    # IPv4 header checksum (RFC 1071): the ten words sum to 0xffff
    t = 0
    i = 14
    while i < 34:
        t += (p[i] << 8) | p[i + 1]
        i += 2
    t = (t & 0xFFFF) + (t >> 16)
    t = (t & 0xFFFF) + (t >> 16)
    if t != 0xFFFF:
        return -1
    # TCP checksum over the pseudo header and the segment
    t = ((p[26] << 8) | p[27]) + ((p[28] << 8) | p[29]) + ((p[30] << 8) | p[31]) + ((p[32] << 8) | p[33])
    t = int(sum16(34, 14 + total, f, t + 6 + total - 20))
    if t != 0xFFFF:
        return -1
    return plen | (acked << 11)


@micropython.viper
def hp_build(f, th, seq: int, ack: int, fw: int, plen: int) -> int:
    """fastpath.build: the 54-byte headers of th's connection into f (the payload is already at
    f[54:]); returns the frame length (padded to 60)."""
    p = ptr8(f)
    q = ptr8(th)
    i = 0
    while i < 54:
        p[i] = q[i]
        i += 1
    total = 40 + plen
    p[16] = total >> 8
    p[17] = total & 0xFF
    v = ((q[54] << 8) | q[55]) + 1  # IP identification: per connection, as Linux's inet_id
    q[54] = (v >> 8) & 0xFF
    q[55] = v & 0xFF
    p[18] = q[54]
    p[19] = q[55]
    lo = ((q[58] << 8) | q[59]) + (seq & 0xFFFF)
    hi = ((q[56] << 8) | q[57]) + (seq >> 16) + (lo >> 16)
    p[38] = (hi >> 8) & 0xFF
    p[39] = hi & 0xFF
    p[40] = (lo >> 8) & 0xFF
    p[41] = lo & 0xFF
    flags = fw >> 16
    if flags & 0x10:
        lo = ((q[62] << 8) | q[63]) + (ack & 0xFFFF)
        hi = ((q[60] << 8) | q[61]) + (ack >> 16) + (lo >> 16)
        p[42] = (hi >> 8) & 0xFF
        p[43] = hi & 0xFF
        p[44] = (lo >> 8) & 0xFF
        p[45] = lo & 0xFF
    else:
        p[42] = 0
        p[43] = 0
        p[44] = 0
        p[45] = 0
    p[47] = flags
    p[48] = (fw >> 8) & 0xFF
    p[49] = fw & 0xFF
    t = 0
    i = 14
    while i < 34:
        t += (p[i] << 8) | p[i + 1]
        i += 2
    t = (t & 0xFFFF) + (t >> 16)
    t = ~((t & 0xFFFF) + (t >> 16))
    p[24] = (t >> 8) & 0xFF
    p[25] = t & 0xFF
    t = ((p[26] << 8) | p[27]) + ((p[28] << 8) | p[29]) + ((p[30] << 8) | p[31]) + ((p[32] << 8) | p[33])
    t = ~int(sum16(34, 54 + plen, f, t + 26 + plen))
    p[50] = (t >> 8) & 0xFF
    p[51] = t & 0xFF
    n = 54 + plen
    while n < 60:
        p[n] = 0
        n += 1
    return n
