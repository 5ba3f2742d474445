# An HTTP/1.0 GET client written against the standard `socket` module, MicroPython style (as
# urequests does it: getaddrinfo, socket, connect, write, readline for the headers, read the body).
# It knows nothing of tcpip; tests/host/test_mp_clients.py runs it unmodified over tcpip (with
# tcpip.socket installed as the `socket` module) and over the runtime's own sockets.
#     micropython http_get.py HOST PORT PATH
# Prints: "status <status line>", one "header <name>: <value>" per header, "length <n>",
# "sha256 <hex digest of the body>", "done".
import sys
import socket

try:
    import hashlib
except ImportError:
    import uhashlib as hashlib
try:
    import binascii
except ImportError:
    import ubinascii as binascii


def get(host, port, path):
    ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    s = socket.socket(ai[0], ai[1], ai[2])
    s.settimeout(20)
    try:
        s.connect(ai[-1])
        request = b"GET " + path.encode() + b" HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n"
        s.write(request)
        status = s.readline()
        headers = []
        while True:
            line = s.readline()
            if not line or line == b"\r\n":
                break
            name, value = line.split(b":", 1)
            headers.append((name.strip().lower(), value.strip()))
        body = s.read()
    finally:
        s.close()
    return status, headers, body


def main(argv):
    host, port, path = argv[1], int(argv[2]), argv[3]
    status, headers, body = get(host, port, path)
    print("status", status.decode().strip())
    for name, value in headers:
        print("header %s: %s" % (name.decode(), value.decode()))
    print("length", len(body))
    print("sha256", binascii.hexlify(hashlib.sha256(body).digest()).decode())
    print("done")


if __name__ == "__main__":
    main(sys.argv)
