# An HTTP/1.0 server as MicroPython code writes one with the built-in socket module (nothing here
# knows tcpip): serves COUNT connections one after another on PORT, then exits. Each answer's body
# is SIZE reproducible bytes; it prints "listening PORT" once it listens and "served ADDR REQUEST"
# per connection.
#     micropython http_server.py PORT COUNT SIZE [BACKLOG]
import socket
import sys


def body(size):
    b = bytearray(size)
    for i in range(size):
        b[i] = (i * 7 + (i >> 8)) & 0xFF
    return b


def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2])
    size = int(sys.argv[3])
    backlog = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    data = body(size)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo("0.0.0.0", port)[0][-1])
    s.listen(backlog)
    s.settimeout(60)
    print("listening", port)
    for _ in range(count):
        c, addr = s.accept()
        c.settimeout(30)
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 4096:
            chunk = c.recv(512)
            if not chunk:
                break
            req += chunk
        c.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n")
        c.write(b"Content-Length: %d\r\n\r\n" % size)
        c.write(data)
        c.close()
        print("served", addr[0], req.split(b"\r\n")[0].decode())
    s.close()


main()
