# An HTTP/1.0 GET as older MicroPython libraries write it (umqtt.simple, urequests): `import
# usocket as socket`, `import uselect as select`, a non-blocking socket driven by select.poll, and
# time.sleep_ms between the request and the first poll. It knows nothing of tcpip;
# tests/host/test_run.py runs it unmodified with `python -m host_tools run`, on both runtimes.
#     micropython usocket_poll_get.py HOST PORT PATH
# Prints "module <name of the socket module it got>", then the lines of http_get.py.
import sys

import usocket as socket
import uselect as select

try:
    import utime as time
except ImportError:
    import time
try:
    import hashlib
except ImportError:
    import uhashlib as hashlib
try:
    import binascii
except ImportError:
    import ubinascii as binascii

EINPROGRESS = 115


def get(host, port, path):
    addr = socket.getaddrinfo(host, port)[0][-1]
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(addr)
    except OSError as e:
        if e.args[0] != EINPROGRESS:
            raise
    p = select.poll()
    p.register(s, select.POLLOUT)
    if not p.poll(10000):
        raise OSError(110)
    s.send(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
    time.sleep_ms(200)  # the response arrives meanwhile: the stack must still be serviced
    p.modify(s, select.POLLIN)
    data = bytearray()
    for _ in range(100000):
        if not p.poll(10000):
            raise OSError(110)
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines[0], lines[1:], body


def main(argv):
    host, port, path = argv[1], int(argv[2]), argv[3]
    status, headers, body = get(host, port, path)
    print("module", socket.__name__)
    print("status", status.decode().strip())
    for line in headers:
        name, value = line.split(b":", 1)
        print("header %s: %s" % (name.strip().lower().decode(), value.strip().decode()))
    print("length", len(body))
    print("sha256", binascii.hexlify(hashlib.sha256(body).digest()).decode())
    print("done")


if __name__ == "__main__":
    main(sys.argv)
