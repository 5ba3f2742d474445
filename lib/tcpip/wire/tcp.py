"""TCP header (RFC 9293 3.1), option parsing and sequence-number arithmetic.

Only what the stack uses; offsets, accessors, seq_lt & co. and TcpRepr: tests/host/wirerep/tcp.py.
"""


def get_seq(buf, off):
    return buf[off + 4] << 24 | buf[off + 5] << 16 | buf[off + 6] << 8 | buf[off + 7]


def get_window(buf, off):
    return buf[off + 14] << 8 | buf[off + 15]


def emit_header(buf, off, sport, dport, seq, ack, flags, window, header_len):
    """Write the fixed 20 bytes; checksum and urgent pointer 0. Options are the caller's."""
    buf[off] = sport >> 8
    buf[off + 1] = sport & 0xFF
    buf[off + 2] = dport >> 8
    buf[off + 3] = dport & 0xFF
    buf[off + 4] = seq >> 24
    buf[off + 5] = seq >> 16 & 0xFF
    buf[off + 6] = seq >> 8 & 0xFF
    buf[off + 7] = seq & 0xFF
    buf[off + 8] = ack >> 24
    buf[off + 9] = ack >> 16 & 0xFF
    buf[off + 10] = ack >> 8 & 0xFF
    buf[off + 11] = ack & 0xFF
    buf[off + 12] = (header_len >> 2) << 4
    buf[off + 13] = flags
    buf[off + 14] = window >> 8
    buf[off + 15] = window & 0xFF
    buf[off + 16] = 0
    buf[off + 17] = 0
    buf[off + 18] = 0
    buf[off + 19] = 0


def find_option(buf, off, header_len, kind, size):
    """Index in buf of the last option `kind` with length `size` (a later one overrides, as in
    Linux), -1 if absent. Never raises.

    Walks the options as Linux tcp_parse_options: END stops, NOP skips a byte, a length below 2
    or running past the header stops, other kinds (and other lengths) are skipped.
    """
    i = off + 20
    end = off + header_len
    if end > len(buf):
        end = len(buf)
    found = -1
    while i < end:
        k = buf[i]
        if k == 0:  # RFC 9293 3.2: End of Option List
            break
        if k == 1:  # No-Operation
            i += 1
            continue
        if end - i < 2:  # no room for the length byte
            break
        n = buf[i + 1]
        if n < 2 or n > end - i:  # "silly" or partial option: stop (as Linux)
            break
        if k == kind and n == size:
            found = i
        i += n
    return found


def get_mss_option(buf, off, header_len):
    """The MSS option's value, 0 if absent (length 4 only, RFC 9293 3.7.1). Never raises."""
    i = find_option(buf, off, header_len, 2, 4)
    if i < 0:
        return 0
    return buf[i + 2] << 8 | buf[i + 3]


def has_sack_permitted(buf, off, header_len):
    """RFC 2018 SACK-permitted (kind 4, length 2) is among the options."""
    return find_option(buf, off, header_len, 4, 2) >= 0


# Sequence numbers compare modulo 2**32 (RFC 9293 3.4); never use a raw < on them.
def seq_diff(a, b):
    """Signed a - b in [-2**31, 2**31)."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def seq_gt(a, b):
    return seq_diff(a, b) > 0
