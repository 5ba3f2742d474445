# The same GET with MicroPython's asyncio streams: open_connection, write, drain, readline,
# readexactly, read, close, wait_closed. It knows nothing of tcpip (see http_get.py).
#     micropython async_get.py HOST PORT PATH
# Prints the same lines as http_get.py, plus "eof <n>" (bytes after the body: 0).
import sys

try:
    import asyncio
except ImportError:
    import uasyncio as asyncio
try:
    import hashlib
except ImportError:
    import uhashlib as hashlib
try:
    import binascii
except ImportError:
    import ubinascii as binascii


async def get(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET " + path.encode() + b" HTTP/1.0\r\n")
    writer.write(b"Host: " + host.encode() + b"\r\n\r\n")
    await writer.drain()
    status = await reader.readline()
    headers = []
    while True:
        line = await reader.readline()
        if not line or line == b"\r\n":
            break
        name, value = line.split(b":", 1)
        headers.append((name.strip().lower(), value.strip()))
    length = -1
    for name, value in headers:
        if name == b"content-length":
            length = int(value)
    body = await reader.readexactly(length)
    rest = await reader.read(-1)
    writer.close()
    await writer.wait_closed()
    return status, headers, body, rest


def main(argv):
    host, port, path = argv[1], int(argv[2]), argv[3]
    status, headers, body, rest = asyncio.run(asyncio.wait_for(get(host, port, path), 30))
    print("status", status.decode().strip())
    for name, value in headers:
        print("header %s: %s" % (name.decode(), value.decode()))
    print("length", len(body))
    print("sha256", binascii.hexlify(hashlib.sha256(body).digest()).decode())
    print("eof", len(rest))
    print("done")


if __name__ == "__main__":
    main(sys.argv)
