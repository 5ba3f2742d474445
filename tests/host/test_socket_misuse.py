# dual: cpython micropython
# API misuse (issue 8) on tcpip.socket and Udp.sendto: calls after close(), connect to port 0,
# and buffers that are not what they seem (immutable objects handed to recv_into/readinto, buffers
# whose len() is not their size in bytes). Runs on CPython and on the MicroPython unix port, where
# the viper copy would write into a bytes object without these checks.
import sys

from segment import ACK, PSH, SYN
from tcpip import errors
from tcpip.socket import SHUT_WR, Socket
from segment import Harness
from test_socket_api import PEER, connected, raises

MICROPYTHON = sys.implementation.name == "micropython"


# -- after close(): EBADF everywhere (item 10) ------------------------------------------------------
def test_bind_and_names_after_close_are_ebadf():
    h = Harness()
    s = Socket(h.stack)
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))
    raises(errors.EBADF, s.bind, ("192.0.2.2", 4000))
    raises(errors.EBADF, s.getsockname)
    raises(errors.EBADF, s.getpeername)
    assert s.connect_ex(PEER) == errors.EBADF
    assert h.stack.tcp.bound == []  # nothing was bound on the way


def test_bind_after_close_of_a_connected_socket_is_ebadf():
    h, s, peer = connected()
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))
    raises(errors.EBADF, s.getsockname)
    raises(errors.EBADF, s.getpeername)
    raises(errors.EBADF, s.shutdown, SHUT_WR)


def test_bind_twice_is_still_einval():
    h = Harness()
    s = Socket(h.stack)
    s.bind(("0.0.0.0", 0))
    raises(errors.EINVAL, s.bind, ("0.0.0.0", 0))
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))


# -- connect to port 0 (item 8) --------------------------------------------------------------------
def _no_connection(h, s):
    assert s.tcb is None and s.state == 0  # UNCONNECTED
    assert h.stack.tcp.tcbs == []
    h.advance(3000)
    h.expect_nothing()  # no SYN, now or later


def test_connect_to_port_zero_is_refused_at_once():
    h = Harness()
    s = Socket(h.stack)
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    _no_connection(h, s)
    # the socket is still good for a real connect
    s.setblocking(False)
    raises(errors.EINPROGRESS, s.connect, PEER)
    h.expect_tcp(SYN)


def test_connect_to_port_zero_non_blocking_and_connect_ex():
    h = Harness()
    s = Socket(h.stack)
    s.setblocking(False)
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    _no_connection(h, s)
    assert s.connect_ex(("192.0.2.1", 0)) == errors.EADDRNOTAVAIL
    s.settimeout(2)
    assert s.connect_ex(("192.0.2.1", 0)) == errors.EADDRNOTAVAIL
    _no_connection(h, s)


def test_connect_to_port_zero_keeps_a_bound_port():
    h = Harness()
    s = Socket(h.stack)
    s.bind(("0.0.0.0", 40000))
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    assert s.getsockname() == ("0.0.0.0", 40000)
    s.setblocking(False)
    raises(errors.EINPROGRESS, s.connect, PEER)
    syn = h.expect_tcp(SYN)
    assert syn.tcp.src_port == 40000


# -- buffers that cannot take data (item 3) ----------------------------------------------------------
def type_error(fn, *args):
    try:
        fn(*args)
    except TypeError:
        return
    raise AssertionError("no TypeError from %r%r" % (fn, args))


def _immutables():
    """Objects a read must not write into: bytes (a constant of this module among them: on a board
    a frozen one lives in flash), str, read-only memoryviews (also a slice of one)."""
    return [bytes(8), b"constant", "a string", memoryview(b"12345678"), memoryview(b"12345678")[2:],
            b"", memoryview(b"")]


def _contents(x):
    return x if isinstance(x, str) else bytes(x)


def test_recv_into_and_readinto_refuse_immutable_buffers():
    data = b"0123456789ab"
    for timeout in (0, 5, None):
        h, s, peer = connected(timeout=timeout)
        h.feed(peer.data(data))
        victims = _immutables()
        before = [_contents(v) for v in victims]
        for v in victims:
            type_error(s.recv_into, v)
            type_error(s.recv_into, v, 4)
            type_error(s.readinto, v)
            type_error(s.readinto, v, 4)
        assert [_contents(v) for v in victims] == before
        assert b"constant" == bytes(b"constant")
        assert s.recv(100) == data  # nothing was taken


def test_immutable_buffers_are_refused_before_waiting():
    # nothing waits: a non-blocking call would say EAGAIN, a blocking one would wait; the buffer
    # is refused first (CPython checks its arguments before the call)
    for timeout in (0, 5):
        h, s, peer = connected(timeout=timeout)
        t0 = h.clock.ticks_ms()
        for v in _immutables():
            type_error(s.recv_into, v)
            type_error(s.readinto, v)
        assert h.clock.ticks_ms() == t0


def test_writable_buffers_still_work():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"0123456789abcdef"))
    b = bytearray(4)
    assert s.recv_into(b) == 4 and b == b"0123"
    m = memoryview(bytearray(6))
    assert s.recv_into(m[1:], 3) == 3 and bytes(m) == b"\x00456\x00\x00"
    assert s.readinto(m, 2) == 2 and bytes(m[:2]) == b"78"
    assert s.readinto(m[4:]) == 2 and bytes(m) == b"78569a"
    assert s.recv_into(bytearray(0)) == 0
    assert s.recv(10) == b"bcdef"


# -- buffers whose len() is not their size in bytes (item 7) ------------------------------------------
def test_send_takes_the_byte_length_of_arrays_and_their_views():
    from array import array

    h, s, peer = connected(timeout=0)
    tcb = s.tcb
    ring = len(tcb.tx)
    for buf in (array("i", [1, 2, 3]), memoryview(array("h", [-1, 2, 0x1234])), array("d", [0.5]),
                array("B", [7, 8]), memoryview(array("i", [5, 6, 7]))[1:]):
        want = bytes(buf)
        assert s.send(buf) == len(want), buf
        h.expect_tcp(ACK | PSH, payload=want)
        h.feed(peer.ack())
    a = array("i", [0x01020304, 0x05060708])
    assert s.write(a) == 8
    h.expect_tcp(ACK | PSH, payload=bytes(a))
    h.feed(peer.ack())
    assert s.write(a, 6) == 6  # write(buf, n): n bytes, as MicroPython's stream write
    h.expect_tcp(ACK | PSH, payload=bytes(a)[:6])
    h.feed(peer.ack())
    assert s.write(a, 2, 5) == 5
    h.expect_tcp(ACK | PSH, payload=bytes(a)[2:7])
    h.feed(peer.ack())
    s.settimeout(5)
    s.sendall(a)
    h.expect_tcp(ACK | PSH, payload=bytes(a))
    assert len(tcb.tx) == ring == tcb.tx_size  # the ring kept its size (CPython's copy grew it)


def test_send_refuses_what_is_not_a_buffer():
    h, s, peer = connected(timeout=0)
    ring = len(s.tcb.tx)
    for bad in ([1, 2, 3], (1, 2), 12, None, {1: 2}):
        type_error(s.send, bad)
        type_error(s.sendall, bad)
        type_error(s.write, bad)
    h.expect_nothing()
    assert len(s.tcb.tx) == ring and s.tcb.tx_len == 0


def test_send_of_a_str():
    # CPython's socket refuses a str; MicroPython's (modlwip, the unix port's) sends its UTF-8
    # bytes: each runtime as its own socket does, and never a number of characters as bytes
    h, s, peer = connected(timeout=0)
    text = "\u00e9\u00e9\u00e9"
    if not MICROPYTHON:
        type_error(s.send, text)
        type_error(s.write, text)
        type_error(s.sendall, text)
        h.expect_nothing()
        return
    assert s.send(text) == 6
    h.expect_tcp(ACK | PSH, payload=text.encode())
    h.feed(peer.ack())
    assert s.write(text, 4) == 4
    h.expect_tcp(ACK | PSH, payload=text.encode()[:4])


def test_recv_into_fills_the_bytes_of_an_array():
    from array import array

    data = bytes(range(1, 25))
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(data))
    a = array("i", [0, 0, 0])
    assert s.recv_into(a) == 12 and bytes(a) == data[:12]
    m = memoryview(array("h", [0, 0, 0]))
    assert s.recv_into(m, 5) == 5 and bytes(m) == data[12:17] + b"\x00"
    b = array("h", [0, 0, 0, 0])
    assert s.readinto(b) == 7 and bytes(b) == data[17:] + b"\x00"
    h.feed(peer.data(data))
    s.settimeout(5)
    d = array("d", [0.0, 0.0])
    assert s.readinto(d) == 16 and bytes(d) == data[:16]


def test_cpython_copy_never_changes_a_buffers_size():
    if MICROPYTHON:
        return  # the bytecode and viper copies index or address bytes: no slice assignment
    from array import array

    from tcpip import _pure

    for src, soff, n in ((b"ab", 0, 4), (b"abcd", 3, 2), (array("i", [1, 2, 3]), 0, 3), ("text", 0, 4)):
        dst = bytearray(8)
        try:
            _pure.copy_cpython(dst, 2, src, soff, n)
        except (TypeError, ValueError):
            pass
        assert len(dst) == 8, (src, n)
    dst = bytearray(b"01234567")
    _pure.copy_cpython(dst, 2, dst, 0, 5)  # overlap still copies like memmove
    assert dst == b"01012347"
    _pure.copy_cpython(dst, 0, memoryview(dst), 1, 7)
    assert dst == b"10123477"


def test_memoryview_buffers_do_not_allocate():
    from wirecheck import heap_locked

    h, s, peer = connected(timeout=0)
    assert s.write(b"") == 0  # settle into CONNECTED outside the locked region
    h.feed(peer.data(b"0123456789"))
    m = memoryview(bytearray(8))
    part = m[2:6]
    ro = memoryview(b"xyz")
    got = []

    def send(frame, n):  # the harness's device keeps a copy of every frame: count them instead
        pass

    h.dev.send = send
    Socket.recv_into(s, bytearray(0))  # the first call of the slow path loads what it needs

    def calls():
        got.append(s.recv_into(part))
        got.append(s.readinto(m, 3))
        got.append(s.write(ro))
        got.append(s.send(part))

    heap_locked(calls)
    assert got == [4, 3, 3, 4]
    if MICROPYTHON:
        from tcpip import sockopt

        assert sockopt._word in (4, 8)  # the typecode is read in place: the layout check passed


def test_micropython_without_the_typecode_peek():
    # MicroPython without viper (or a memoryview layout the check at first use does not know):
    # struct.pack_into refuses read-only buffers and a one-item slice gives the item size
    if not MICROPYTHON:
        return
    from array import array

    from tcpip import sockopt

    saved = sockopt._word
    sockopt._word = -1
    try:
        test_recv_into_and_readinto_refuse_immutable_buffers()
        h, s, peer = connected(timeout=0)
        a = array("h", [1, 2])
        assert s.send(memoryview(a)) == 4
        h.expect_tcp(ACK | PSH, payload=bytes(a))
        h.feed(peer.data(b"wxyz"))
        b = array("h", [0, 0])
        assert s.recv_into(memoryview(b)) == 4 and bytes(b) == b"wxyz"
    finally:
        sockopt._word = saved


# -- the other public call that copies from a caller's buffer: Udp.sendto ---------------------------
def test_udp_sendto_never_reads_past_the_buffer():
    from segment import PEER_IP

    h = Harness()
    udp = h.stack.udp
    for buf, n in ((b"abc", 4), (bytearray(10), 11), (memoryview(b"abcdef")[4:], 3)):
        try:
            udp.sendto(buf, n, PEER_IP, 9, 1234)
        except ValueError:
            pass
        else:
            raise AssertionError("sendto read %d bytes of a %d-byte buffer" % (n, len(buf)))
    assert h.dev.sent == [] and h.stack.counters.udp_tx == 0
    assert udp.sendto(b"abc", 3, PEER_IP, 9, 1234)
