"""Header prediction kernels (Van Jacobson; Linux tcp_rcv_established): match a received frame
against a connection's template in one call, and build a segment's Ethernet + IPv4 + TCP headers
from it in one call. viper on MicroPython >= 1.28 (tcpip._viper.hp_match / hp_build), the Python
twins below elsewhere; both give identical results (tests/host/test_fastpath.py).

The template `th` (TEMPLATE_LEN bytes, one per connection; tcp_out.build_template fills it):
  th[0:54]   the headers we send: Ethernet (next hop's MAC, ours, 0x0800), IPv4 (0x45, TOS 0,
             total length 0, ident 0, DF, TTL 64, TCP, checksum 0, our address, the peer's), TCP
             (our port, the peer's, seq 0, ack 0, data offset 5, flags 0, window 0, checksum 0)
  th[54:56]  the IPv4 identification of the last datagram (per connection, as Linux's inet_id)
  th[56:60]  the send base, th[60:64] the receive base (big-endian; tcpip.tcp_core: relative
             sequence numbers)
  th[64:66]  the peer's window we predict (SND.WND as last taken)
A received frame matches when it is an unfragmented IPv4 datagram without options to our MAC and
address from the peer, TCP from its port to ours with a 20-byte header, flags ACK or ACK|PSH, the
predicted window, SEG.SEQ == RCV.NXT, SND.UNA =< SEG.ACK =< SND.MAX, data or a new ACK (not both
absent), and both checksums valid. Anything else takes the full RFC 9293 path (tcp_in).
"""
import sys

TEMPLATE_LEN = 66
HEADERS_LEN = 54  # Ethernet 14 + IPv4 20 + TCP 20: where a segment's payload starts in a frame


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
    if f[0:6] != th[6:12] or f[12] != 8 or f[13] != 0 or f[14] != 0x45 or f[23] != 6:
        return -1
    if (f[20] & 0x3F) | f[21] or f[26:30] != th[30:34] or f[30:34] != th[26:30]:
        return -1
    if f[34] != th[36] or f[35] != th[37] or f[36] != th[34] or f[37] != th[35]:
        return -1
    fl = f[47]
    if f[46] != 0x50 or (fl != 0x10 and fl != 0x18) or f[48] != th[64] or f[49] != th[65]:
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


# ENABLED: the stack takes the fast path at all. On MicroPython without viper it does not (the
# Python twins slice, which allocates there; the full path allocates nothing).
IMPLEMENTATION = "python"
ENABLED = sys.implementation.name != "micropython"
match = match_py
build = build_py
if not ENABLED and sys.implementation.version >= (1, 28):
    try:
        from tcpip import _viper

        match = _viper.hp_match
        build = _viper.hp_build
        IMPLEMENTATION = "viper"
        ENABLED = True
    except Exception:  # no viper emitter in this build, or an .mpy of another arch
        pass
