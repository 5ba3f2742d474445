"""Viper cores for checksum.py and mem.py. Imported only on MicroPython >= 1.28.

Rules kept here (see docs/ARCHITECTURE.md and REFERENCE.md "MicroPython runtime facts"):
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
        if n >= 8 and not (delta & 3):
            # Same alignment: bytes up to a multiple of 4, then whole words (32-bit loads and
            # stores at multiples of 4 only), then bytes.
            while doff & 3:
                ptr8(doff)[0] = ptr8(doff + delta)[0]
                doff += 1
            stop = e - 31
            while doff < stop:
                q = doff + delta
                ptr32(doff)[0] = ptr32(q)[0]
                ptr32(doff)[1] = ptr32(q)[1]
                ptr32(doff)[2] = ptr32(q)[2]
                ptr32(doff)[3] = ptr32(q)[3]
                ptr32(doff)[4] = ptr32(q)[4]
                ptr32(doff)[5] = ptr32(q)[5]
                ptr32(doff)[6] = ptr32(q)[6]
                ptr32(doff)[7] = ptr32(q)[7]
                doff += 32
            stop = e - 3
            while doff < stop:
                ptr32(doff)[0] = ptr32(doff + delta)[0]
                doff += 4
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
