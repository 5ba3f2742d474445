"""TLS over a tcpip socket on CPython: a drop-in for the `ssl` module whose SSLContext.wrap_socket
also takes a tcpip.socket.Socket.

CPython's ssl.SSLContext.wrap_socket needs a kernel socket (SSLSocket hands the file descriptor
to OpenSSL, which reads and writes it itself); a tcpip socket has no descriptor. OpenSSL's memory
BIOs need none: ssl.MemoryBIO + SSLContext.wrap_bio give an SSLObject that reads the records we
feed it and writes the records to send into a buffer, and TlsSocket moves those bytes over the
tcpip socket. On MicroPython none of this is needed: its ssl (mbedTLS, extmod/modtls_mbedtls.c)
wraps any object with the stream protocol (read/readinto, write, ioctl), which a tcpip socket has,
so `ssl.SSLContext(...).wrap_socket(tcpip_socket, server_hostname=...)` works as it is
(docs/SOCKETS.md, "TLS"). This module is CPython only (host_tools), not in lib/tcpip.

    from host_tools import tls as ssl          # instead of `import ssl`
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile="ca.pem")
    s = ctx.wrap_socket(tcpip_socket, server_hostname="example.test")
    s.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    print(s.read())

TlsSocket is for blocking sockets (a timeout is fine: it bounds each wait); its read / readinto /
readline / write follow MicroPython's stream semantics as the tcpip socket's do, recv / recv_into /
send / sendall CPython's. Errors are ssl.SSLError and its subclasses (SSLCertVerificationError
for a certificate that does not verify), or the socket's OSError (ETIMEDOUT, ECONNRESET).
"""
import ssl as _ssl
from ssl import *  # noqa: F401,F403  (PROTOCOL_TLS_CLIENT, CERT_REQUIRED, SSLError, ...)

_CHUNK = 16384  # what one socket read asks for: a TLS record is at most 16 KB plus its overhead


class TlsSocket:
    """TLS over `sock` (a tcpip socket) through an SSLObject and two memory BIOs."""

    def __init__(self, context, sock, server_side=False, server_hostname=None, do_handshake=True):
        self._sock = sock
        self._in = _ssl.MemoryBIO()
        self._out = _ssl.MemoryBIO()
        self._eof = False
        self._obj = context.wrap_bio(self._in, self._out, server_side=server_side,
                                     server_hostname=server_hostname)
        if do_handshake:
            self.do_handshake()

    # -- moving records ------------------------------------------------------------------------
    def _flush(self):
        data = self._out.read()
        if data:
            self._sock.sendall(data)

    def _fill(self):
        """One read from the socket into the TLS object (blocks up to the socket's timeout)."""
        if self._eof:
            raise _ssl.SSLEOFError(_ssl.SSL_ERROR_EOF, "EOF in violation of protocol")
        data = self._sock.recv(_CHUNK)
        if data:
            self._in.write(data)
        else:
            self._eof = True
            self._in.write_eof()

    def _run(self, op, *args):
        """op(*args) on the SSLObject, feeding it from the socket while it wants to read; every
        round reads data or the end of the stream, so this ends (the socket's timeout bounds a
        wait)."""
        while True:
            try:
                r = op(*args)
            except _ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            except _ssl.SSLError:
                try:
                    self._flush()  # the alert that tells the peer why (bad certificate, ...)
                except OSError:
                    pass
                raise
            self._flush()
            return r

    # -- the TLS calls ---------------------------------------------------------------------------
    def do_handshake(self):
        self._run(self._obj.do_handshake)

    def getpeercert(self, binary_form=False):
        return self._obj.getpeercert(binary_form)

    def version(self):
        return self._obj.version()

    def cipher(self):
        return self._obj.cipher()

    @property
    def server_hostname(self):
        return self._obj.server_hostname

    # -- data: socket calls --------------------------------------------------------------------
    def recv(self, n):
        """What one record gives, up to n bytes; b"" at the end of the stream (close_notify, or
        the connection's end without one: ssl's suppress_ragged_eofs)."""
        if n <= 0:
            return b""
        try:
            return self._run(self._obj.read, n)
        except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
            return b""

    def recv_into(self, buf, nbytes=0):
        m = memoryview(buf).cast("B")
        n = nbytes if 0 < nbytes < len(m) else len(m)
        data = self.recv(n)
        m[:len(data)] = data
        return len(data)

    def send(self, data):
        return self._run(self._obj.write, data)

    def sendall(self, data):
        m = memoryview(data).cast("B")
        done = 0
        while done < len(m):
            done += self.send(m[done:])

    # -- data: stream calls (MicroPython's semantics, as tcpip.socket's) -------------------------
    def read(self, n=-1):
        """read(n): n bytes unless the stream ends first; read(): everything to the end."""
        out = bytearray()
        while n is None or n < 0 or len(out) < n:
            chunk = self.recv(_CHUNK if n is None or n < 0 else n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def readinto(self, buf, nbytes=None):
        m = memoryview(buf).cast("B")
        n = len(m) if nbytes is None or not 0 <= nbytes < len(m) else nbytes
        data = self.read(n)
        m[:len(data)] = data
        return len(data)

    def readline(self, limit=-1):
        line = bytearray()
        while limit is None or limit < 0 or len(line) < limit:
            c = self.recv(1)
            if not c:
                break
            line += c
            if c == b"\n":
                break
        return bytes(line)

    def write(self, buf, n=None):
        data = memoryview(buf).cast("B")
        if n is not None:
            data = data[:n]
        self.sendall(data)
        return len(data)

    # -- the rest ----------------------------------------------------------------------------------
    def settimeout(self, value):
        self._sock.settimeout(value)

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def close(self):
        """Send close_notify (not waiting for the peer's), then close the socket."""
        try:
            self._obj.unwrap()
        except (_ssl.SSLError, OSError):
            pass
        try:
            self._flush()
        except OSError:
            pass
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SSLContext(_ssl.SSLContext):
    """ssl.SSLContext whose wrap_socket also takes a tcpip socket (then a TlsSocket)."""

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    suppress_ragged_eofs=True, server_hostname=None, session=None):
        from tcpip.socket import Socket

        if isinstance(sock, Socket):
            return TlsSocket(self, sock, server_side, server_hostname, do_handshake_on_connect)
        return _ssl.SSLContext.wrap_socket(self, sock, server_side, do_handshake_on_connect,
                                           suppress_ragged_eofs, server_hostname, session)
