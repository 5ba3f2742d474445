# An HTTPS GET written against the standard `socket` and `ssl` modules, MicroPython style: a
# socket, connect, ssl.SSLContext(PROTOCOL_TLS_CLIENT) with CERT_REQUIRED and a CA (a DER file),
# wrap_socket(server_hostname=...), write, readline, read. It knows nothing of tcpip.
# tests/host/test_tls_real.py runs it on the MicroPython unix port over tcpip (launch.py installs
# tcpip.socket as `socket`; MicroPython's own ssl wraps it) and on CPython in-process (`socket`
# is tcpip.socket and `ssl` host_tools.tls there).
#     https_get.py IP PORT PATH ATTEMPT...   with ATTEMPT = CA_DER_FILE,SERVER_HOSTNAME
# Each attempt is a new connection; it prints "ok <status line> <length> <sha256 of the body>" or
# "fail <exception type> <message>" (the socket is closed and the next attempt runs), then "done".
import sys
import socket
import ssl

try:
    import hashlib
except ImportError:
    import uhashlib as hashlib
try:
    import binascii
except ImportError:
    import ubinascii as binascii


def get(ip, port, path, cafile, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's SSLContext starts with CERT_NONE
    with open(cafile, "rb") as f:  # DER: the unix port's mbedTLS has no PEM parser
        ctx.load_verify_locations(cadata=f.read())
    s = socket.socket()
    s.settimeout(20)
    try:
        s.connect(socket.getaddrinfo(ip, port)[0][-1])
        tls = ctx.wrap_socket(s, server_hostname=name)
    except BaseException:
        s.close()
        raise
    try:
        tls.write(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: " + name.encode() + b"\r\n\r\n")
        status = tls.readline().strip()
        while True:
            line = tls.readline()
            if not line or line == b"\r\n":
                break
        body = tls.read()
    finally:
        tls.close()
    return status, body


def main(argv):
    ip, port, path = argv[1], int(argv[2]), argv[3]
    for attempt in argv[4:]:
        cafile, name = attempt.split(",")
        try:
            status, body = get(ip, port, path, cafile, name)
        except Exception as e:  # the failure the attempt expects (a bad CA, a wrong name)
            print("fail", type(e).__name__, str(e).replace("\n", " "))
            continue
        digest = binascii.hexlify(hashlib.sha256(body).digest()).decode()
        print("ok", status.decode(), len(body), digest)
    print("done")


main(sys.argv)
