"""IPv4 header (RFC 791) and address helpers. Addresses are 4-byte buffers.

Only what the stack uses; offsets, accessors and Ipv4Repr: tests/host/wirerep/ipv4.py.
"""
try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

from tcpip.checksum import checksum

# check() results: 0 means the header is usable (public in tests/host/wirerep/ipv4.py; stack.py
# keeps its own copies).
_BAD_VERSION = const(1)
_BAD_HEADER_LEN = const(2)
_BAD_TOTAL_LEN = const(3)
_BAD_CHECKSUM = const(4)


def is_fragment(buf, off):
    """MF set or fragment offset != 0 (RFC 791 3.2: a piece of a larger datagram)."""
    return ((buf[off + 6] & 0x3F) | buf[off + 7]) != 0


def check(buf, off, n):
    """0 when the n bytes at off start with a usable IPv4 header, else a BAD_* reason."""
    # RFC 1122 3.2.1.1-3.2.1.2: silently discard wrong version or bad checksum; RFC 791 3.1 lengths.
    if n < 20:
        return _BAD_HEADER_LEN
    b0 = buf[off]
    if b0 >> 4 != 4:
        return _BAD_VERSION
    hl = (b0 & 0x0F) << 2
    if hl < 20 or hl > n:
        return _BAD_HEADER_LEN
    total = buf[off + 2] << 8 | buf[off + 3]
    # Total length may be below n: Ethernet pads short frames to 60 bytes.
    if total < hl or total > n:
        return _BAD_TOTAL_LEN
    if checksum(buf, off, off + hl) != 0:
        return _BAD_CHECKSUM
    return 0


def emit_header(buf, off, src, src_off, dst, dst_off, proto, payload_len, ident, ttl, df):
    """Write a 20-byte header (no options, TOS 0) and fill its checksum."""
    total = 20 + payload_len
    buf[off] = 0x45
    buf[off + 1] = 0
    buf[off + 2] = total >> 8
    buf[off + 3] = total & 0xFF
    buf[off + 4] = ident >> 8
    buf[off + 5] = ident & 0xFF
    buf[off + 6] = 0x40 if df else 0
    buf[off + 7] = 0
    buf[off + 8] = ttl
    buf[off + 9] = proto
    buf[off + 10] = 0
    buf[off + 11] = 0
    for i in range(4):
        buf[off + 12 + i] = src[src_off + i]
        buf[off + 16 + i] = dst[dst_off + i]
    c = checksum(buf, off, off + 20)
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF


def is_multicast(buf, off=0):
    return buf[off] & 0xF0 == 0xE0  # 224.0.0.0/4 (RFC 5771)


def is_limited_broadcast(buf, off=0):
    return (buf[off] & buf[off + 1] & buf[off + 2] & buf[off + 3]) == 0xFF  # RFC 919


def is_zero(buf, off=0):
    return (buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3]) == 0  # 0.0.0.0, "this host"


def is_loopback(buf, off=0):
    return buf[off] == 127  # 127.0.0.0/8 (RFC 1122 3.2.1.3)


def aton(text):
    """"a.b.c.d" -> 4 bytes. Exactly four decimal octets 0..255, no sign, space or leading zero."""
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("not a dotted-quad IPv4 address: %r" % (text,))
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        # Leading zeros are refused: inet_aton would read them as octal (as inet_pton does).
        if not 1 <= len(p) <= 3 or (len(p) > 1 and p[0] == "0"):
            raise ValueError("bad IPv4 octet %r in %r" % (p, text))
        v = 0
        for ch in p:
            if not "0" <= ch <= "9":
                raise ValueError("bad IPv4 octet %r in %r" % (p, text))
            v = v * 10 + ord(ch) - 48
        if v > 255:
            raise ValueError("IPv4 octet out of range %r in %r" % (p, text))
        out[i] = v
    return bytes(out)


def ntoa(buf, off=0):
    return "%d.%d.%d.%d" % (buf[off], buf[off + 1], buf[off + 2], buf[off + 3])
