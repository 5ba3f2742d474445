# UDP against a Linux peer, written against the standard `socket` module, MicroPython style. It
# knows nothing of tcpip; tests/host/test_dgram_real_peer.py runs it over tcpip (installed as
# `socket`) on the MicroPython unix port and on CPython, with a Linux echo server (ECHO), a
# control port (CONTROL: on b"ready" Linux broadcasts to our port BCAST_IN), a Linux socket
# bound to 0.0.0.0:BCAST_OUT with SO_BROADCAST, and nothing on CLOSED (Linux answers ICMP port
# unreachable).
#     micropython udp_exchange.py LINUX_IP SUBNET_BROADCAST
# Prints one "key values..." line per result.
import sys
import socket

LINUX = sys.argv[1]
SUBNET_BROADCAST = sys.argv[2]
ECHO = 7007
CONTROL = 7008
BCAST_OUT = 9999
BCAST_IN = 9998
CLOSED = 9

if sys.implementation.name == "micropython":
    import select

    def poller():
        return select.poll()
else:  # CPython's select cannot wait on these sockets: tcpip's poller does (docs/SOCKETS.md)
    from tcpip.poller import poll as poller


def errno_of(e):
    return e.args[0]


def pattern(n):
    return bytes((i * 7 + n) & 0xFF for i in range(n))


def echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    addr = socket.getaddrinfo(LINUX, ECHO, 0, socket.SOCK_DGRAM)[0][-1]
    for n in (0, 1, 100, 1472):
        s.sendto(pattern(n), addr)
        data, src = s.recvfrom(2048)
        print("echo", n, "ok" if data == pattern(n) else "bad", src[0], src[1])
    try:
        s.sendto(bytes(1473), addr)
        print("big sent")
    except OSError as e:
        print("big", errno_of(e))
    print("port", s.getsockname()[1])
    s.close()


def connected_with_poll():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((LINUX, ECHO))
    s.setblocking(False)
    p = poller()
    p.register(s, 1)  # POLLIN
    s.send(b"polled")
    ready = p.poll(5000)
    print("poll", len(ready), s.recv(64).decode())
    s.close()


def broadcast_out():
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        b.sendto(b"refused", ("255.255.255.255", BCAST_OUT))
        print("nobroadcast sent")
    except OSError as e:
        print("nobroadcast", errno_of(e))
    b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    b.sendto(b"to-all", ("255.255.255.255", BCAST_OUT))
    b.sendto(b"to-subnet", (SUBNET_BROADCAST, BCAST_OUT))
    b.close()


def broadcast_in():
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("0.0.0.0", BCAST_IN))
    r.settimeout(5)
    r.sendto(b"ready", (LINUX, CONTROL))
    for _ in range(2):
        data, src = r.recvfrom(64)
        print("heard", data.decode(), src[0])
    r.close()


def refused():
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.connect((LINUX, CLOSED))
    c.settimeout(3)
    c.send(b"anyone there?")
    try:
        c.recv(64)
        print("refused none")
    except OSError as e:
        print("refused", errno_of(e))
    c.setblocking(False)
    try:
        c.recv(64)
        print("again data")
    except OSError as e:
        print("again", errno_of(e))  # reported once: now nothing to read
    c.close()
    # an unconnected socket hears no ICMP error: its recvfrom times out
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1)
    u.sendto(b"anyone there?", (LINUX, CLOSED))
    try:
        u.recvfrom(64)
        print("unconnected data")
    except OSError as e:
        print("unconnected", errno_of(e))
    u.close()


echo()
connected_with_poll()
broadcast_out()
broadcast_in()
refused()
print("done")
