"""The listening socket: listen() and accept() of tcpip.socket (loaded on first use, through the
socket's __getattr__, so a client-only board never carries it). The TCP side is tcpip.tcp_listen.

listen(backlog) turns an unconnected socket into a listener on its bound port (an ephemeral one if
it was not bound, as Linux's autobind); the connections whose handshake completed wait in the
listener's queue (at most backlog of them, rings and all) and accept() hands out the oldest as a
connected socket with the peer's address. Blocking, with a timeout (ETIMEDOUT), or non-blocking
(EAGAIN); select.poll reports POLLIN on a listener while a connection waits, which is what
MicroPython's asyncio.start_server waits for. Accepted sockets inherit TCP_NODELAY and keep-alive
from the listener, as on Linux.
"""
from tcpip import errors
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# Socket._opts indexes (tcpip.sockopt; tests/host/test_const_copies.py)
_NODELAY = const(1)
_RCVBUF = const(6)
_SNDBUF = const(7)
_DEFAULT_BACKLOG = 2  # a board's rings are precious; MicroPython leaves the default to the port


def listen(sock, backlog=_DEFAULT_BACKLOG):
    from tcpip import socket as so

    st = sock.state
    if st == so.CLOSED:
        raise so._oserror(errors.EBADF)
    if st == so.LISTENING:
        sock._listener.backlog = backlog if backlog > 0 else 1  # Linux: a second listen() resizes
        return
    if st != so.UNCONNECTED:
        raise so._oserror(errors.EINVAL)  # connected or connecting (Linux inet_listen)
    if not sock.bound_port:
        sock.bind(("0.0.0.0", 0))
    o = sock._opts
    addr = sock.bound_addr
    if addr is not None and addr == b"\x00\x00\x00\x00":
        addr = None
    try:
        x = sock.stack.tcp.listen(addr, sock.bound_port, backlog,
                                  o[_RCVBUF] if o else None, o[_SNDBUF] if o else None)
    except OSError as e:
        raise so._oserror(e.args[0])
    sock._listener = x
    sock.state = so.LISTENING


def accept(sock):
    """(socket, (address, port)) of the oldest connection waiting."""
    from tcpip import socket as so

    if sock.state != so.LISTENING:
        raise so._oserror(errors.EBADF if sock.state == so.CLOSED else errors.EINVAL)
    x = sock._listener
    q = x.queue
    if not q:
        if not sock._wait(lambda: len(q) > 0 or sock.state != so.LISTENING, None):
            if sock._timeout_ms == 0:
                raise so._oserror(errors.EAGAIN)
            raise so._oserror(errors.ETIMEDOUT)
        if sock.state != so.LISTENING:
            raise so._oserror(errors.EBADF)
    t = q.pop(0)
    if isinstance(sock, so.socket):
        ns = so.socket(stack=sock.stack)
    else:
        ns = so.Socket(sock.stack)
    ns.tcb = t
    ns.state = so.CONNECTED
    o = sock._opts
    if o:
        from tcpip import sockopt

        ns._opts = list(o)
        if o[_NODELAY]:
            t.set_nodelay(True)
        sockopt.apply_keepalive(ns)
    return ns, (ipv4.ntoa(t.remote_addr), t.remote_port)


def stop(sock):
    """close() of a listener: it stops, and the connections nobody accepted are reset."""
    x = sock._listener
    sock._listener = None
    if x is not None:
        sock.stack.tcp.unlisten(x)
