"""Header prediction kernels (Van Jacobson; Linux tcp_rcv_established): match a received frame
against a connection's template in one call, and build a segment's Ethernet + IPv4 + TCP headers
from it in one call. viper on MicroPython >= 1.28 (tcpip._viper.hp_match / hp_build), the Python
twins (tcpip._pure.match_py / build_py) elsewhere; both give identical results
(tests/host/test_fastpath.py).

The template `th` (TEMPLATE_LEN bytes, one per connection; tcp_out.build_template fills it):
  th[0:54]    the headers we send: Ethernet (next hop's MAC, ours, 0x0800), IPv4 (0x45, TOS 0,
              total length 0, ident 0, DF, TTL 64, TCP, checksum 0, our address, the peer's), TCP
              (our port, the peer's, seq 0, ack 0, data offset 5, flags 0, window 0, checksum 0)
  th[54:56]   the IPv4 identification of the last datagram (per connection, as Linux's inet_id)
  th[56:60]   the send base, th[60:64] the receive base (big-endian; tcpip.tcp_core: relative
              sequence numbers)
  th[64:114]  the first 50 bytes of a segment from the peer that matches, and th[114:164] the
              bits of them that must be so (HP_MASK): our MAC, 0x0800, 0x45, no fragment bits,
              TCP, the peer's address and ours, its port and ours, data offset 5, flags ACK
              (PSH may be set), the predicted window at th[112:114] (SND.WND as last taken)
A received frame matches when it is an unfragmented IPv4 datagram without options to our MAC and
address from the peer, TCP from its port to ours with a 20-byte header, flags ACK or ACK|PSH, the
predicted window, SEG.SEQ == RCV.NXT, SND.UNA =< SEG.ACK =< SND.MAX, data or a new ACK (not both
absent), and both checksums valid. Anything else takes the full RFC 9293 path (tcp_in).
"""
import sys

TEMPLATE_LEN = 164
HEADERS_LEN = 54  # Ethernet 14 + IPv4 20 + TCP 20: where a segment's payload starts in a frame
# th[114:164]: which bits of a received frame's first 50 bytes the prediction compares
HP_MASK = (b"\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\xff\xff\xff\x00\x00\x00\x00\x00"
           b"\x3f\xff\x00\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00"
           b"\x00\x00\x00\x00\x00\x00\xff\xf7\xff\xff")


# ENABLED: the stack takes the fast path at all. On MicroPython without viper it does not (the
# Python twins slice, which allocates there; the full path allocates nothing).
IMPLEMENTATION = "python"
ENABLED = sys.implementation.name != "micropython"
if not ENABLED and sys.implementation.version >= (1, 28):
    try:
        from tcpip import _viper

        match = _viper.hp_match
        build = _viper.hp_build
        IMPLEMENTATION = "viper"
        ENABLED = True
    except Exception:  # no viper emitter in this build, or an .mpy of another arch
        pass
if IMPLEMENTATION == "python":
    from tcpip import _pure

    match = _pure.match_py
    build = _pure.build_py
