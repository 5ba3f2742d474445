"""The rarely used parts of tcpip.socket: socket options and their constants, bind,
getsockname / getpeername, shutdown, connect_ex, makefile, gettimeout. A socket's
__getattr__ (and the module's, for the constants) imports this module on first use, so a board
that never calls them never loads it (its heap is the RP2040's scarce resource: docs/BOARDS.md,
"Speed and memory on an RP2040")."""
import sys

from tcpip import errors
from tcpip import tcp as _tcp
from tcpip.socket import CLOSED, CONNECTED, CONNECTING, IPPROTO_TCP, UNCONNECTED, _oserror, parse_address
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing

# -- the option constants, also tcpip.socket's (its module __getattr__ finds them here) ----------
# Linux values (CPython and the MicroPython unix port agree)
SOL_SOCKET = 1
SO_REUSEADDR = 2
SO_ERROR = 4
SO_BROADCAST = 6  # datagram sockets (tcpip.dgram)
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_LINGER = 13
TCP_NODELAY = 1
TCP_KEEPIDLE = 4    # seconds
TCP_KEEPINTVL = 5   # seconds
TCP_KEEPCNT = 6
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
IPPROTO_UDP = 17  # datagram sockets (tcpip.dgram)
# recv / recv_into flags (recv_flags below): Linux's, as the MicroPython unix port's socket
# exports them (lwIP's, on the ESP32 port, are 1 and 8)
MSG_PEEK = 2
MSG_DONTWAIT = 0x40

# The values lwIP's socket API uses where they differ from Linux (lwip/sockets.h; MicroPython's
# ESP32 port exports these). MicroPython's own lwIP module (extmod/modlwip.c) ignores the level,
# says SOL_SOCKET = 1 and SO_REUSEADDR = SOF_REUSEADDR = 4. setsockopt accepts all of them;
# getsockopt(SOL_SOCKET, 4) stays Linux's SO_ERROR. lwIP's TCP_KEEPIDLE/INTVL/CNT (3, 4, 5)
# collide with Linux's (4, 5, 6) at the same level and are not accepted.
LWIP_SOL_SOCKET = 0xFFF
LWIP_SO_REUSEADDR = 0x0004
LWIP_SO_KEEPALIVE = 0x0008
LWIP_SO_LINGER = 0x0080
LWIP_SO_SNDBUF = 0x1001
LWIP_SO_RCVBUF = 0x1002
LWIP_SO_ERROR = 0x1007
_LWIP_SO_BROADCAST = const(0x0020)  # lwIP's SOF_BROADCAST, modlwip's socket.SO_BROADCAST

_MAX_RING = 65535  # no window scaling: a bigger receive ring could never be advertised

# Socket._opts, made by the first setsockopt / getsockopt (tcpip.socket repeats the indexes it
# reads; tests/host/test_const_copies.py checks they agree): SO_REUSEADDR, TCP_NODELAY (None: the
# stack's TcpConfig.nodelay), SO_KEEPALIVE, TCP_KEEPIDLE / TCP_KEEPINTVL (ms) / TCP_KEEPCNT,
# SO_RCVBUF / SO_SNDBUF (None: TcpConfig's rings), SO_LINGER (-1 off, 0 abort, else seconds)
_REUSEADDR = const(0)
_NODELAY = const(1)
_KEEPALIVE = const(2)
_KA_IDLE = const(3)
_KA_INTVL = const(4)
_KA_COUNT = const(5)
_RCVBUF = const(6)
_SNDBUF = const(7)
_LINGER = const(8)


def _opts(sock):
    """The socket's option list, made on first use with the defaults."""
    o = sock._opts
    if o is None:
        cfg = sock.stack.tcp.config
        o = sock._opts = [0, None, False, cfg.keepalive_idle_ms, cfg.keepalive_interval_ms,
                          cfg.keepalive_count, None, None, -1]
    return o


def _int_option(value):
    """An option value: an int (or bool), or 4 bytes holding a C int as CPython passes them."""
    if value is True or value is False:  # a bool is no int on MicroPython
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):  # CPython: "a bytes-like object is required"; modlwip: mp_obj_get_int
        raise TypeError("a bytes-like object is required, not 'str'")
    try:
        if len(value) == 4:
            return int.from_bytes(bytes(value), sys.byteorder)
    except TypeError:
        pass
    raise _oserror(errors.EINVAL)


def _ints(*args):
    """TypeError for an argument that must be an int and is not (a str: "1"), as CPython's
    socket ("cannot be interpreted as an integer") and modlwip's (mp_obj_get_int) raise."""
    for a in args:
        if not isinstance(a, int):
            raise TypeError("'%s' object cannot be interpreted as an integer" % type(a).__name__)


def _linger_option(value):
    """struct linger {int l_onoff; int l_linger;} as 8 bytes, or an (onoff, seconds) pair ->
    seconds to linger, -1 when off."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        onoff, secs = int(value[0]), int(value[1])
    else:
        try:
            ok = len(value) == 8
        except TypeError:
            ok = False
        if not ok:
            raise _oserror(errors.EINVAL)
        b = bytes(value)
        onoff = int.from_bytes(b[0:4], sys.byteorder)
        secs = int.from_bytes(b[4:8], sys.byteorder)
        if secs >= 0x80000000:
            secs -= 0x100000000
    if not onoff:
        return -1
    return secs if secs > 0 else 0


def setsockopt(sock, level, optname, value):
    """SOL_SOCKET: SO_REUSEADDR (bind() may take a port connections still use, TIME-WAIT ones
    included, as Linux), SO_KEEPALIVE,
    SO_RCVBUF / SO_SNDBUF (ring sizes, before connect), SO_LINGER; IPPROTO_TCP: TCP_NODELAY,
    TCP_KEEPIDLE / TCP_KEEPINTVL (seconds), TCP_KEEPCNT. Linux and lwIP numbers both work
    (see LWIP_*); anything else is OSError(ENOPROTOOPT)."""
    _ints(level, optname)
    if sock.state == CLOSED:
        raise _oserror(errors.EBADF)
    opt = _socket_option(level, optname)
    o = _opts(sock)
    if opt == SO_REUSEADDR:
        o[_REUSEADDR] = 1 if _int_option(value) else 0
    elif opt == SO_KEEPALIVE:
        o[_KEEPALIVE] = bool(_int_option(value))
        apply_keepalive(sock)
    elif opt == SO_RCVBUF or opt == SO_SNDBUF:
        size = _int_option(value)
        if size <= 0:
            raise _oserror(errors.EINVAL)
        if sock.state != UNCONNECTED:
            raise _oserror(errors.EISCONN)  # the rings are made at connect
        if size > _MAX_RING:
            size = _MAX_RING
        o[_RCVBUF if opt == SO_RCVBUF else _SNDBUF] = size
    elif opt == SO_LINGER:
        o[_LINGER] = _linger_option(value)
    elif opt == -TCP_NODELAY:
        o[_NODELAY] = bool(_int_option(value))
        if sock.tcb is not None:
            sock.tcb.set_nodelay(o[_NODELAY])
    elif opt == -TCP_KEEPIDLE or opt == -TCP_KEEPINTVL or opt == -TCP_KEEPCNT:
        v = _int_option(value)
        if v < 1 or v > (127 if opt == -TCP_KEEPCNT else 32767):
            raise _oserror(errors.EINVAL)  # Linux's limits (MAX_TCP_KEEPIDLE ...)
        if opt == -TCP_KEEPIDLE:
            o[_KA_IDLE] = v * 1000
        elif opt == -TCP_KEEPINTVL:
            o[_KA_INTVL] = v * 1000
        else:
            o[_KA_COUNT] = v
        apply_keepalive(sock)
    else:
        raise _oserror(errors.ENOPROTOOPT)


def getsockopt(sock, level, optname, buflen=0):
    _ints(level, optname, buflen)
    if sock.state == CLOSED:
        raise _oserror(errors.EBADF)
    if (level == SOL_SOCKET and optname == SO_ERROR) or (
            optname == LWIP_SO_ERROR and (level == SOL_SOCKET or level == LWIP_SOL_SOCKET)):
        v = take_error(sock)
    else:
        opt = _socket_option(level, optname)
        o = _opts(sock)
        if opt == SO_REUSEADDR:
            v = o[_REUSEADDR]
        elif opt == SO_KEEPALIVE:
            v = 1 if o[_KEEPALIVE] else 0
        elif opt == SO_RCVBUF:
            v = sock.tcb.rx_size if sock.tcb is not None else (o[_RCVBUF] or sock.stack.tcp.config.rx_buffer)
        elif opt == SO_SNDBUF:
            v = sock.tcb.tx_size if sock.tcb is not None else (o[_SNDBUF] or sock.stack.tcp.config.tx_buffer)
        elif opt == SO_LINGER:
            linger = o[_LINGER]
            if buflen:
                on = 0 if linger < 0 else 1
                secs = linger if linger > 0 else 0
                return on.to_bytes(4, sys.byteorder) + secs.to_bytes(4, sys.byteorder)
            v = 0 if linger < 0 else 1
        elif opt == -TCP_NODELAY:
            if sock.tcb is not None:
                v = 1 if sock.tcb.nodelay else 0
            elif o[_NODELAY] is None:
                v = 1 if sock.stack.tcp.config.nodelay else 0
            else:
                v = 1 if o[_NODELAY] else 0
        elif opt == -TCP_KEEPIDLE:
            v = o[_KA_IDLE] // 1000
        elif opt == -TCP_KEEPINTVL:
            v = o[_KA_INTVL] // 1000
        elif opt == -TCP_KEEPCNT:
            v = o[_KA_COUNT]
        else:
            raise _oserror(errors.ENOPROTOOPT)
    if buflen:
        return (v & 0xFFFFFFFF).to_bytes(4, sys.byteorder)
    return v


def _socket_option(level, optname):
    """Map (level, optname) in Linux or lwIP numbering to SO_* (SOL_SOCKET) or -TCP_*
    (IPPROTO_TCP); 0 when unknown."""
    if level == SOL_SOCKET:
        if optname == SO_REUSEADDR or optname == LWIP_SO_REUSEADDR:
            return SO_REUSEADDR  # 4 is modlwip's SO_REUSEADDR (setsockopt has no SO_ERROR)
        if optname == SO_KEEPALIVE:
            return SO_KEEPALIVE
        if optname == SO_RCVBUF or optname == LWIP_SO_RCVBUF:
            return SO_RCVBUF
        if optname == SO_SNDBUF or optname == LWIP_SO_SNDBUF:
            return SO_SNDBUF
        if optname == SO_LINGER or optname == LWIP_SO_LINGER:
            return SO_LINGER
        if optname == SO_BROADCAST or optname == _LWIP_SO_BROADCAST:
            return SO_BROADCAST  # datagram sockets only (tcpip.dgram): ENOPROTOOPT on a stream
    elif level == LWIP_SOL_SOCKET:
        if optname == LWIP_SO_REUSEADDR:
            return SO_REUSEADDR
        if optname == LWIP_SO_KEEPALIVE:
            return SO_KEEPALIVE
        if optname == LWIP_SO_RCVBUF:
            return SO_RCVBUF
        if optname == LWIP_SO_SNDBUF:
            return SO_SNDBUF
        if optname == LWIP_SO_LINGER:
            return SO_LINGER
        if optname == _LWIP_SO_BROADCAST:
            return SO_BROADCAST
    elif level == IPPROTO_TCP:
        if optname == TCP_NODELAY or optname == TCP_KEEPIDLE or optname == TCP_KEEPINTVL or optname == TCP_KEEPCNT:
            return -optname
    return 0


def apply_keepalive(sock):
    o = sock._opts
    if o and sock.state == CONNECTED and sock.tcb is not None and sock.tcb.state != _tcp.CLOSED:
        sock.tcb.set_keepalive(o[_KEEPALIVE], o[_KA_IDLE], o[_KA_INTVL], o[_KA_COUNT])


def take_error(sock):
    """SO_ERROR: a failed connect's error, or the connection's (RST, timeout), cleared by
    reading it."""
    if sock.state == CONNECTING and sock.tcb is not None and sock.tcb.state == _tcp.CLOSED:
        try:
            sock._finish_connect()
        except OSError as e:
            sock._pending_error = e.args[0]
    err = sock._pending_error
    sock._pending_error = 0
    if not err and sock.state == CONNECTED:
        t = sock.tcb
        if _TYPE_CHECKING:
            assert t is not None  # CONNECTED: a Tcb
        if t.state == _tcp.CLOSED and t.error and not sock._error_reported:
            sock._error_reported = True
            err = t.error
    return err


def bind(sock, addr):
    if sock.state == CLOSED:
        raise _oserror(errors.EBADF)  # as every call after close()
    if sock.state != UNCONNECTED or sock.bound_port:
        raise _oserror(errors.EINVAL)
    host, port = parse_address(addr)
    tcp = sock.stack.tcp
    if host != b"\x00\x00\x00\x00" and host != sock.stack.route.addr:
        raise _oserror(errors.EADDRNOTAVAIL)
    if port and tcp.port_in_use(port):
        raise _oserror(errors.EADDRINUSE)
    if port and not (sock._opts and sock._opts[_REUSEADDR]) and _port_has_connections(tcp, port):
        # connections (TIME-WAIT ones too) still use the port: Linux's bind refuses it unless
        # SO_REUSEADDR, which is what a restarted server sets
        raise _oserror(errors.EADDRINUSE)
    if port == 0:
        # bind to an ephemeral port now (inet_csk_get_port picks one; any free one will do)
        def free(p):
            return not tcp.port_in_use(p) and not any(t.local_port == p for t in tcp.tcbs)

        try:
            port = tcp.ports.allocate(host, b"\x00\x00\x00\x00", 0, free)
        except OSError as e:
            raise _oserror(e.args[0])
    sock.bound_addr = host
    sock.bound_port = port
    tcp.bound.append([host, port])


def _port_has_connections(tcp, port):
    for t in tcp.tcbs:
        if t.local_port == port:
            return True
    tw = tcp.tw
    for i in range(tcp.tw_n):
        if (tw[24 * i + 8] << 8 | tw[24 * i + 9]) == port:
            return True
    return False


def getsockname(sock):
    if sock.state == CLOSED:
        raise _oserror(errors.EBADF)
    if sock.tcb is not None:
        return (ipv4.ntoa(sock.tcb.local_addr), sock.tcb.local_port)
    return (ipv4.ntoa(sock.bound_addr or b"\x00\x00\x00\x00"), sock.bound_port)


def getpeername(sock):
    if sock.state == CLOSED:
        raise _oserror(errors.EBADF)
    if sock.state != CONNECTED or sock.tcb is None:
        raise _oserror(errors.ENOTCONN)
    return (ipv4.ntoa(sock.tcb.remote_addr), sock.tcb.remote_port)


def shutdown(sock, how):
    _ints(how)
    if how != SHUT_RD and how != SHUT_WR and how != SHUT_RDWR:
        raise _oserror(errors.EINVAL)
    tcb = sock._io_tcb()
    if how != SHUT_WR:
        sock._rd_shut = True
    if how != SHUT_RD:
        sock._wr_shut = True
        tcb.shutdown_write()


def unbind(sock):
    """close(): the port bind() took is free again."""
    bound = sock.stack.tcp.bound
    for i in range(len(bound)):
        if bound[i][1] == sock.bound_port:
            bound.pop(i)
            break
    sock.bound_port = 0


def connect_ex(sock, addr):
    try:
        sock.connect(addr)
    except OSError as e:
        return e.errno if isinstance(getattr(e, "errno", None), int) else e.args[0]
    return 0


def makefile(sock, mode="rb", buffering=0, *args, **kw):
    """The socket itself (as MicroPython): it has read/readline/readinto/write."""
    return sock


def gettimeout(sock):
    return sock.timeout


def recv_flags(sock, buf, n, flags):
    """recv(n, flags) (buf None: returns bytes) and recv_into(buf, n, flags) (returns the count)
    with MSG_PEEK: the bytes are copied out of the receive ring and stay there (no Tcb.recv_into,
    so nothing is consumed and no window update is sent), and MSG_DONTWAIT: this one call is
    non-blocking (EAGAIN when nothing is there and no EOF), whatever the socket's timeout. As
    Linux tcp_recvmsg: a peek waits like a read when the call may block, returns what is there up
    to n (b"" / 0 at EOF), and reports the connection's error (once) as a read does. Other flags
    are ignored, as all were before."""
    if not isinstance(flags, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(flags).__name__)
    ms = sock._timeout_ms
    if flags & MSG_DONTWAIT:
        sock._timeout_ms = 0
    try:
        k = sock._rx_ready(None)
    finally:
        sock._timeout_ms = ms
    if k < 0:
        raise _oserror(errors.EAGAIN)
    if k > n:
        k = n
    dst = buf if buf is not None else bytearray(k if k > 0 else 0)
    if k > 0:
        t = sock.tcb
        if flags & MSG_PEEK:
            from tcpip.tcp_core import ring_read

            ring_read(dst, 0, t.rx, t.rx_size, t.rx_head, k)
        else:
            t.recv_into(dst, 0, k)
    else:
        k = 0
    return k if buf is not None else bytes(dst)


# -- the caller's buffer of a data call, when it is not bytes or a bytearray ------------------------
_word = 0  # MicroPython: where a memoryview keeps its typecode (0: not looked for yet, -1: unknown)
_sum16 = None  # tcpip._viper.sum16 once _word is known


def byte_buffer(buf, writable):
    """What tcpip.socket's data calls copy from (send, sendall, write) or into (recv_into,
    readinto) when buf is not bytes or a bytearray: an object whose len() is its size in bytes
    and whose items are bytes, over the same memory (buf itself when it is a memoryview of bytes).
    TypeError for what is no buffer (a list, an int; a str on CPython, as CPython's socket; a
    str's UTF-8 bytes on MicroPython, as its socket) and, when writable, for a read-only one
    (bytes, str, a memoryview of them): the copy must not write into an immutable object (on a
    board a constant in flash), and must take the bytes of an array, not its number of items."""
    if sys.implementation.name != "micropython":
        m = memoryview(buf)  # TypeError for a str, a list ...
        if writable and m.readonly:
            raise TypeError("a writable buffer is required, not " + type(buf).__name__)
        if m.format != "B" or m.ndim != 1 or not m.c_contiguous:
            m = m.cast("B")  # TypeError for a view that is not contiguous
        return m
    # MicroPython: len() of a memoryview or an array counts items, and a memoryview tells neither
    # its item size nor whether it is writable; both are in its typecode (_item_size)
    m = buf if buf.__class__ is memoryview else memoryview(buf)  # TypeError for a list, an int ...
    size = _item_size(m)
    if size < 0:
        if writable:
            raise TypeError("a writable buffer is required, not " + type(buf).__name__)
        size = -size
    if size == 1:
        return m
    import uctypes

    return uctypes.bytearray_at(uctypes.addressof(m), len(m) * size)


def _item_size(m):
    """MicroPython: the size of memoryview m's items in bytes, negative when it is read-only.
    mp_obj_array_t (py/objarray.h) holds the typecode in the low byte of the word after the type
    pointer, with 0x80 set when a memoryview is writable (MP_OBJ_ARRAY_TYPECODE_FLAG_RW), and id()
    is the object's address. The viper checksum core reads that byte without allocating: over
    buffer 0 its addresses are absolute, and the RFC 1071 sum of one byte is that byte << 8 (an odd
    byte is padded with a zero, RFC 1071 4.1). The layout is checked on three known views first;
    without viper (or if the check fails) two small allocations and a struct.pack_into, which
    refuses read-only buffers, tell the same."""
    global _word
    if _word == 0:
        _word = _find_typecode()
    if _word > 0:
        if _TYPE_CHECKING:
            assert _sum16 is not None  # found with _word
        a = id(m) + _word
        code = _sum16(a, a + 1, 0, 0) >> 8
        kind = code & 0x7F
        size = 1
        if kind != 1 and kind != 0x42 and kind != 0x62:  # a bytearray's, "B", "b"
            import struct

            size = struct.calcsize(chr(kind))
        return size if code & 0x80 else -size
    import struct

    size = len(bytes(m[0:1])) if len(m) else 1
    try:
        struct.pack_into("", m, 0)
    except TypeError:
        return -size
    return size


def _find_typecode():
    """The offset of the typecode byte in a memoryview object (the size of a pointer), or -1."""
    global _sum16
    try:
        from tcpip import mem

        if mem.IMPLEMENTATION != "viper":
            return -1
        from tcpip._viper import sum16
        from array import array
    except ImportError:
        return -1
    views = (memoryview(bytearray(1)), memoryview(b"x"), memoryview(array("i", [0])))
    for w in (4, 8):
        codes = [sum16(id(v) + w, id(v) + w + 1, 0, 0) >> 8 for v in views]
        if codes == [0x81, 0x42, 0xE9]:
            _sum16 = sum16
            return w
    return -1
