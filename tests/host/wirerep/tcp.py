"""TCP header (RFC 9293 3.1), test side: tcpip.wire.tcp (option parsing, emit_header, seq_diff,
seq_gt) plus offsets, accessors, the rest of the sequence arithmetic and TcpRepr."""
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tcpip.checksum import checksum, pseudo_sum
from tcpip.wire.tcp import *  # noqa: F401,F403
from tcpip.wire.tcp import emit_header, get_mss_option, get_seq, get_window, seq_diff
from wirerep import check_span

MIN_HEADER_LEN = const(20)
MAX_HEADER_LEN = const(60)
FLAG_FIN = const(1)
FLAG_SYN = const(2)
FLAG_RST = const(4)
FLAG_PSH = const(8)
FLAG_ACK = const(16)
FLAG_URG = const(32)
FLAG_ECE = const(64)
FLAG_CWR = const(128)
OPT_END = const(0)
OPT_NOP = const(1)
OPT_MSS = const(2)
OPT_WSCALE = const(3)
OPT_SACK_PERM = const(4)
OPT_TIMESTAMP = const(8)
# Field offsets, relative to the start of the header (RFC 9293 3.1).
SRC_PORT = const(0)
DST_PORT = const(2)
SEQ = const(4)
ACK = const(8)
DATA_OFF = const(12)  # high nibble: header length in 32-bit words
FLAGS = const(13)
WINDOW = const(14)
CHECKSUM = const(16)
URGENT = const(18)
OPTIONS = const(20)


def get_src_port(buf, off):
    return buf[off] << 8 | buf[off + 1]


def get_dst_port(buf, off):
    return buf[off + 2] << 8 | buf[off + 3]


def get_ack(buf, off):
    return buf[off + 8] << 24 | buf[off + 9] << 16 | buf[off + 10] << 8 | buf[off + 11]


def get_header_len(buf, off):
    return (buf[off + 12] >> 4) << 2


def get_flags(buf, off):
    return buf[off + 13]


def get_checksum(buf, off):
    return buf[off + 16] << 8 | buf[off + 17]


def get_urgent(buf, off):
    return buf[off + 18] << 8 | buf[off + 19]


def set_src_port(buf, off, value):
    buf[off] = value >> 8
    buf[off + 1] = value & 0xFF


def set_dst_port(buf, off, value):
    buf[off + 2] = value >> 8
    buf[off + 3] = value & 0xFF


def set_seq(buf, off, value):
    buf[off + 4] = value >> 24
    buf[off + 5] = value >> 16 & 0xFF
    buf[off + 6] = value >> 8 & 0xFF
    buf[off + 7] = value & 0xFF


def set_ack(buf, off, value):
    buf[off + 8] = value >> 24
    buf[off + 9] = value >> 16 & 0xFF
    buf[off + 10] = value >> 8 & 0xFF
    buf[off + 11] = value & 0xFF


def set_header_len(buf, off, value):
    buf[off + 12] = (value >> 2) << 4  # the reserved bits and NS are written as 0


def set_flags(buf, off, value):
    buf[off + 13] = value


def set_window(buf, off, value):
    buf[off + 14] = value >> 8
    buf[off + 15] = value & 0xFF


def set_checksum(buf, off, value):
    buf[off + 16] = value >> 8
    buf[off + 17] = value & 0xFF


def set_urgent(buf, off, value):
    buf[off + 18] = value >> 8
    buf[off + 19] = value & 0xFF


def put_u32(buf, off, v):
    buf[off] = v >> 24
    buf[off + 1] = v >> 16 & 0xFF
    buf[off + 2] = v >> 8 & 0xFF
    buf[off + 3] = v & 0xFF


def emit_mss_option(buf, off, mss):
    """Write the 4-byte MSS option at the first option position (off is the TCP header's)."""
    buf[off + 20] = 2
    buf[off + 21] = 4
    buf[off + 22] = mss >> 8
    buf[off + 23] = mss & 0xFF


def fill_checksum(buf, off, length, src, src_off, dst, dst_off):
    """Zero, compute and store the checksum of the length-byte segment (header + payload)."""
    buf[off + 16] = 0
    buf[off + 17] = 0
    c = checksum(buf, off, off + length, pseudo_sum(src, src_off, dst, dst_off, 6, length))
    buf[off + 16] = c >> 8
    buf[off + 17] = c & 0xFF


def is_checksum_valid(buf, off, length, src, src_off, dst, dst_off):
    return checksum(buf, off, off + length, pseudo_sum(src, src_off, dst, dst_off, 6, length)) == 0


# Sequence numbers compare modulo 2**32 (RFC 9293 3.4); never use a raw < on them.
def seq_add(a, n):
    return (a + n) & 0xFFFFFFFF


def seq_lt(a, b):
    return seq_diff(a, b) < 0


def seq_le(a, b):
    return seq_diff(a, b) <= 0


def seq_ge(a, b):
    return seq_diff(a, b) >= 0


_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")


def flags_str(flags):
    """"SYN|ACK" style text for the flags byte."""
    names = [_FLAG_NAMES[i] for i in range(8) if flags & (1 << i)]
    return "|".join(names) if names else "0"


class TcpRepr:
    """One TCP header: ports, seq, ack, flags, window, urgent, mss (0 = absent), options_len and
    payload_len (the payload follows the header at 20 + options_len).

    options_len defaults to what the MSS option needs and is rounded up to 4 bytes (RFC 9293 3.1
    padding); emit() writes MSS (if any) and zero-fills the rest of the options.
    """

    def __init__(self, src_port, dst_port, seq, ack, flags, window, urgent=0, mss=0,
                 options_len=None, payload_len=0):
        need = 4 if mss else 0
        if options_len is None or options_len < need:
            options_len = need
        options_len = (options_len + 3) & ~3
        if options_len > MAX_HEADER_LEN - MIN_HEADER_LEN:
            raise ValueError("tcp: options length %d exceeds 40" % options_len)
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self.mss = mss
        self.options_len = options_len
        self.payload_len = payload_len

    @classmethod
    def parse(cls, buf, off, n, src=None, dst=None):
        """n: segment length (header + payload). With src and dst (4-byte buffers) the checksum
        is verified too."""
        check_span(buf, off, n, MIN_HEADER_LEN, "tcp")
        hl = get_header_len(buf, off)
        if hl < MIN_HEADER_LEN:
            raise ValueError("tcp: header length %d below 20" % hl)
        if hl > n:
            raise ValueError("tcp: header length %d exceeds segment length %d" % (hl, n))
        if src is not None and not is_checksum_valid(buf, off, n, src, 0, dst, 0):
            raise ValueError("tcp: bad checksum")
        return cls(get_src_port(buf, off), get_dst_port(buf, off), get_seq(buf, off),
                   get_ack(buf, off), get_flags(buf, off), get_window(buf, off),
                   get_urgent(buf, off), get_mss_option(buf, off, hl), hl - MIN_HEADER_LEN,
                   n - hl)

    def header_len(self):
        return MIN_HEADER_LEN + self.options_len

    def buffer_len(self):
        """Header plus payload: the whole segment."""
        return MIN_HEADER_LEN + self.options_len + self.payload_len

    def emit(self, buf, off, src=None, dst=None):
        """Write the header. With src and dst (4-byte buffers) also fill the checksum, which
        covers the payload_len payload bytes that must already follow the header."""
        hl = MIN_HEADER_LEN + self.options_len
        emit_header(buf, off, self.src_port, self.dst_port, self.seq, self.ack, self.flags,
                    self.window, hl)
        set_urgent(buf, off, self.urgent)
        i = off + MIN_HEADER_LEN
        if self.mss:
            emit_mss_option(buf, off, self.mss)
            i += 4
        while i < off + hl:
            buf[i] = OPT_END
            i += 1
        if src is not None:
            fill_checksum(buf, off, hl + self.payload_len, src, 0, dst, 0)

    def __eq__(self, other):
        return (isinstance(other, TcpRepr) and self.src_port == other.src_port
                and self.dst_port == other.dst_port and self.seq == other.seq
                and self.ack == other.ack and self.flags == other.flags
                and self.window == other.window and self.urgent == other.urgent
                and self.mss == other.mss and self.options_len == other.options_len
                and self.payload_len == other.payload_len)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return ("TcpRepr(src_port=%d, dst_port=%d, seq=%d, ack=%d, flags=%s, window=%d, urgent=%d,"
                " mss=%d, options_len=%d, payload_len=%d)" % (
                    self.src_port, self.dst_port, self.seq, self.ack, flags_str(self.flags),
                    self.window, self.urgent, self.mss, self.options_len, self.payload_len))
