# rings_probe.py -- on the emulated W5500-EVB-Pico with the project's bundle: a board brought up
# with 16 KB rings each way opens a connection right after closing the last one, 20 times, each
# moving 16 KB down and 16 KB up byte-exact, while the application churns the heap between them
# (blocks of odd sizes, some kept, to fragment it as real code does). The rings come from the
# stack's pool (docs/ARCHITECTURE.md, "Rings"), so the second and later connections need no new
# large block. Lines starting with "BOARD " carry the figures.
import gc

import tcpip.board as tb
from tcpip import socket as ts
from tcpip.tcp import TcpConfig

gc.collect()
free0 = gc.mem_free()
stack = tb.bring_up(tb.load_board("w5500_evb_pico"), dhcp=False, addr="192.0.2.2/24",
                    gateway="192.0.2.1", tcp_config=TcpConfig(rx_buffer=16384, tx_buffer=16384))
gc.collect()
print("BOARD rings_up in_use=%d free=%d" % (free0 - gc.mem_free(), gc.mem_free()))
SERVER = ("192.0.2.1", 5001)
N = 16384
buf = bytearray(2048)
pat = bytearray(2048)
for i in range(2048):
    pat[i] = i & 0xFF
kept = []


def request(cmd):
    """A new connection that has sent cmd."""
    s = ts.socket()
    s.settimeout(30)
    s.connect(SERVER)
    s.write(cmd, len(cmd))
    return s


ok = 0
fails = []
for i in range(20):
    # heap churn: twelve odd-sized blocks, one of them kept until the end
    junk = [bytearray(97 + 211 * k) for k in range(12)]
    kept.append(junk[i % 12])
    junk = None
    s = None
    try:
        s = request(b"get %d\n" % N)
        got = 0
        bad = 0
        while True:
            n = s.recv_into(buf)
            if not n:
                break
            if buf[0] != got & 0xFF or buf[n - 1] != (got + n - 1) & 0xFF:
                bad += 1
            got += n
        s.close()
        s = request(b"put %d\n" % N)
        sent = 0
        while sent < N:
            sent += s.write(pat, 2048)
        reply = s.readline()
        s.close()
        if got == N and not bad and reply == b"ok %d 0\n" % N:
            ok += 1
        else:
            fails.append("%d: got %d bad %d reply %r" % (i, got, bad, reply))
    except (OSError, MemoryError) as e:
        fails.append("%d: %r" % (i, e))
        if s is not None:
            s.close()
gc.collect()
print("BOARD rings16k ok=%d of 20 connections=%d pool=%d heap_free=%d fails=%s" % (
    ok, 2 * ok, len(stack.tcp.pool), gc.mem_free(), fails))
