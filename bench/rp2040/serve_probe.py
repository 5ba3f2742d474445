# serve_probe.py -- a server on the emulated W5500-EVB-Pico (bench/rp2040/serve_run.sh runs it with a
# Linux curl client): the heap before listen(), while listening, with a connection accepted, and after
# each close, over N connections of SIZE-byte answers; and how long each took. Lines "SERVE ..."
# carry the figures. What it shows: rings are made when a handshake completes, go back to the pool
# on close, and the heap in use comes back to the same figure connection after connection.
import gc
import time

import tcpip.board as tb
from tcpip import socket as tsocket

N = 10
SIZE = 65536
PORT = 8080

stack = tb.bring_up(tb.load_board("w5500_evb_pico"), dhcp=False, addr="192.0.2.2/24", gateway="192.0.2.1")
tsocket.set_default_stack(stack)
body = bytearray(4096)
for i in range(len(body)):
    body[i] = (i * 7 + (i >> 8)) & 0xFF


def used():
    gc.collect()
    return gc.mem_alloc()


print("SERVE heap_up %d" % used())
s = tsocket.socket()
s.bind(("0.0.0.0", PORT))
s.listen(2)
s.settimeout(60)
print("SERVE heap_listening %d" % used())
print("SERVE listening %d" % PORT)
for k in range(N):
    c, addr = s.accept()
    t0 = time.ticks_ms()
    print("SERVE heap_accepted %d %d" % (k, used()))
    req = b""
    while b"\r\n\r\n" not in req and len(req) < 2048:
        chunk = c.recv(256)
        if not chunk:
            break
        req += chunk
    c.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
    left = SIZE
    while left:
        n = left if left < len(body) else len(body)
        c.write(body, n)
        left -= n
    c.close()
    stack.run_until(lambda: not stack.tcp.tcbs, 2000)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    print("SERVE heap_closed %d %d ms %d tcbs %d tw %d" % (k, used(), ms, len(stack.tcp.tcbs), stack.tcp.tw_n))
s.close()
print("SERVE heap_end %d" % used())
print("SERVE counters %s" % " ".join("%s=%d" % kv for kv in sorted(stack.counters.nonzero().items())))
