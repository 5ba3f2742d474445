# dual: cpython micropython
# recv / recv_into flags (MSG_PEEK, MSG_DONTWAIT), what read() / read(n) / recv() / readline()
# allocate, and the errors arguments of the wrong type get (issue 9, item 3), over the scripted
# segment harness on the ManualClock.
import gc
import sys

from tcpip import errors
from tcpip import socket as tsocket
from tcpip.socket import MSG_DONTWAIT, MSG_PEEK
from test_socket_api import connected, elapsed, raises, schedule

MICROPYTHON = sys.implementation.name == "micropython"


def pattern(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def quiet(h):
    """Frames we send are counted, not copied (FakeDevice keeps a copy of each: allocations)."""
    count = [0]

    def send(frame, n):
        count[0] += 1

    h.dev.send = send
    return count


def type_error(fn, *args):
    try:
        fn(*args)
    except TypeError:
        return
    raise AssertionError("no TypeError from %r%r" % (fn, args))


# -- the constants ------------------------------------------------------------------------------
def test_msg_constants_are_the_runtimes_own():
    assert MSG_PEEK == 2 and MSG_DONTWAIT == 0x40  # Linux's
    import socket as native  # CPython's, or the MicroPython unix port's built-in one

    assert native.MSG_PEEK == MSG_PEEK
    assert native.MSG_DONTWAIT == MSG_DONTWAIT
    assert tsocket.MSG_PEEK == MSG_PEEK and tsocket.socket.__name__ == "socket"


# -- MSG_PEEK --------------------------------------------------------------------------------------
def test_recv_peek_does_not_consume():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"hello world"))
    h.take()
    assert s.recv(5, MSG_PEEK) == b"hello"
    assert s.recv(100, MSG_PEEK) == b"hello world"
    assert s.tcb.rx_len == 11
    assert s.recv(100) == b"hello world"  # the peeked bytes are still there, once
    raises(errors.EAGAIN, s.recv, 100)


def test_recv_into_peek_does_not_consume_and_takes_nbytes():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"0123456789"))
    buf = bytearray(8)
    assert s.recv_into(buf, 4, MSG_PEEK) == 4
    assert buf[:4] == b"0123"
    assert s.recv_into(buf, 0, MSG_PEEK) == 8
    assert buf == b"01234567"
    mv = memoryview(bytearray(16))
    assert s.recv_into(mv, 0, MSG_PEEK) == 10 and bytes(mv[:10]) == b"0123456789"
    assert s.recv_into(buf) == 8 and buf == b"01234567"
    assert s.recv(10) == b"89"


def test_peek_sends_no_window_update_and_the_read_does():
    # reading most of a full ring reopens the window: Tcb.recv_into sends the update. A peek
    # copies the same bytes and must send nothing.
    h, s, peer = connected(timeout=0, rx_buffer=4096)
    for i in range(3):
        h.feed(peer.data(pattern(1000, i)))
    h.take()
    sent = quiet(h)
    assert s.recv(4096, MSG_PEEK) == pattern(1000, 0) + pattern(1000, 1) + pattern(1000, 2)
    assert s.recv(4096, MSG_PEEK | MSG_DONTWAIT) == pattern(1000, 0) + pattern(1000, 1) + pattern(1000, 2)
    assert sent[0] == 0 and s.tcb.rx_len == 3000
    assert len(s.recv(4096)) == 3000
    assert sent[0] == 1  # the window update


def test_peek_across_the_ring_wrap():
    h, s, peer = connected(timeout=0, rx_buffer=1024)
    h.feed(peer.data(pattern(900)))
    assert s.recv(900) == pattern(900)
    h.feed(peer.data(pattern(600, 3)))  # 124 bytes to the ring's end, 476 from its start
    assert s.tcb.rx_head + 600 > s.tcb.rx_size
    buf = bytearray(600)
    assert s.recv_into(buf, 0, MSG_PEEK) == 600 and buf == pattern(600, 3)
    assert s.recv(600, MSG_PEEK) == pattern(600, 3)
    assert s.recv(1000) == pattern(600, 3)


def test_blocking_peek_waits_for_data_like_recv():
    h, s, peer = connected(timeout=5)
    schedule(h, [(300, lambda: peer.data(b"late"))])
    t0 = h.clock.ticks_ms()
    assert s.recv(10, MSG_PEEK) == b"late"
    assert elapsed(h, t0) >= 300
    assert s.recv(10) == b"late"


def test_peek_at_eof_and_after_reset():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"tail"))
    h.feed(peer.fin())
    assert s.recv(10, MSG_PEEK) == b"tail"
    assert s.recv(10) == b"tail"
    assert s.recv(10, MSG_PEEK) == b""
    assert s.recv_into(bytearray(4), 0, MSG_PEEK) == 0
    h2, s2, peer2 = connected(timeout=0)
    h2.feed(peer2.data(b"x"))
    h2.feed(peer2.rst())
    assert s2.recv(10, MSG_PEEK) == b"x"  # data that came before the RST is read first
    assert s2.recv(10) == b"x"
    raises(errors.ECONNRESET, s2.recv, 10, MSG_PEEK)  # reported once, as a read would
    assert s2.recv(10, MSG_PEEK) == b""


# -- MSG_DONTWAIT ------------------------------------------------------------------------------------
def test_dontwait_on_a_blocking_socket_raises_eagain_at_once():
    h, s, peer = connected(timeout=None)
    t0 = h.clock.ticks_ms()
    raises(errors.EAGAIN, s.recv, 10, MSG_DONTWAIT)
    raises(errors.EAGAIN, s.recv_into, bytearray(4), 0, MSG_DONTWAIT)
    raises(errors.EAGAIN, s.recv, 10, MSG_DONTWAIT | MSG_PEEK)
    assert elapsed(h, t0) == 0
    assert s.gettimeout() is None and s._timeout_ms == -1  # the socket stays blocking
    h.feed(peer.data(b"now"))
    assert s.recv(10, MSG_DONTWAIT) == b"now"


def test_dontwait_leaves_the_timeout_for_the_next_call():
    h, s, peer = connected(timeout=2)
    raises(errors.EAGAIN, s.recv, 10, MSG_DONTWAIT)
    t0 = h.clock.ticks_ms()
    raises(errors.ETIMEDOUT, s.recv, 10)
    assert 2000 <= elapsed(h, t0) <= 2100


def test_other_flags_are_ignored_and_bad_flags_are_type_errors():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"abc"))
    assert s.recv(10, 0x100) == b"abc"  # MSG_WAITALL: not honoured (documented)
    type_error(s.recv, 10, "2")
    type_error(s.recv_into, bytearray(2), 0, "2")


# -- what read() / read(n) / recv() / readline() allocate ----------------------------------------
def allocated(fn):
    """(fn(), bytes the heap grew by while it ran): MicroPython only (gc.mem_alloc, no collection
    in between)."""
    tsocket._as_bytes(bytearray(2), 1)  # what the first use loads once (tcpip.cold) is not counted
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        r = fn()
        return r, gc.mem_alloc() - before
    finally:
        gc.enable()


def is_real_bytes(r, want):
    assert type(r) is bytes and r == want and len(r) == len(want)
    assert hash(r) == hash(bytes(want)) and {r: 1}[bytes(want)] == 1
    assert r[1:3] == want[1:3] and r + b"!" == want + b"!"
    if MICROPYTHON:
        import uctypes

        # MicroPython's bytes keep a NUL after the data (C code reads it: mbedTLS's PEM parser)
        assert uctypes.bytes_at(uctypes.addressof(r) + len(r), 1) == b"\x00"
    gc.collect()
    assert r == want  # the data survived a collection


def test_read_n_allocates_the_result_once():
    h, s, peer = connected(timeout=5, rx_buffer=12288)
    body = pattern(9000)
    for i in range(0, 9000, 1460):
        h.feed(peer.data(body[i:i + 1460]))
    h.take()
    quiet(h)
    assert s.read(8) == body[:8]  # the first one loads what it needs once (tcpip.cold)
    if not MICROPYTHON:
        assert s.read(8992) == body[8:]
        return
    r, grew = allocated(lambda: s.read(8192))
    is_real_bytes(r, body[8:8200])
    # one buffer of 8,193 bytes and its object; reading into a buffer and copying it took twice that
    assert 8192 <= grew < 8192 + 512, grew
    r, grew = allocated(lambda: s.recv(500))
    is_real_bytes(r, body[8200:8700])
    assert grew < 500 + 256, grew


def test_read_to_eof_grows_one_buffer():
    # 40 KB through a 4 KB ring: read() grows its buffer ten times, the result is that buffer
    h, s, peer = connected(timeout=5, rx_buffer=4096)
    quiet(h)
    body = pattern(40000, 5)
    frames = [peer.data(body[i:i + 1000]) for i in range(0, 40000, 1000)] + [peer.fin()]
    # the frames are made before read() runs (the heap it uses is measured): arrival i at i ms
    events = [(1 + i, lambda f=f: f) for i, f in enumerate(frames)]
    schedule(h, events)
    if MICROPYTHON:
        r, grew = allocated(s.read)
        is_real_bytes(r, body)
        assert grew < 40000 + 4096 + 2048, grew  # the old read(): chunks, their sum, a copy: 3x
    else:
        assert s.read() == body
    assert s.read() == b""


def test_read_n_short_at_eof_and_non_blocking_read():
    h, s, peer = connected(timeout=0)
    assert s.read(10) is None
    h.feed(peer.data(b"abc"))
    r = s.read(10)
    is_real_bytes(r, b"abc")
    h.feed(peer.data(b"defg"))
    h.feed(peer.fin())
    s.settimeout(5)
    r = s.read(10)  # blocking: short at EOF
    is_real_bytes(r, b"defg")
    assert s.read(10) == b""


def test_readline_in_pieces_is_one_bytes_object():
    h, s, peer = connected(timeout=5)
    h.feed(peer.data(b"first part, "))
    schedule(h, [(10, lambda: peer.data(b"second part, ")), (20, lambda: peer.data(b"end\nnext"))])
    r = s.readline()
    is_real_bytes(r, b"first part, second part, end\n")
    h.feed(peer.fin())
    is_real_bytes(s.readline(), b"next")
    assert s.readline() == b""


# -- the errors arguments of the wrong type get ---------------------------------------------------
def test_str_arguments_get_type_errors_as_a_normal_socket():
    h, s, peer = connected(timeout=0)
    h.feed(peer.data(b"data"))
    type_error(s.recv_into, "abcd")
    type_error(s.readinto, "abcd")
    type_error(s.recv, "10")
    type_error(s.recv_into, bytearray(4), "2")
    type_error(s.read, "10")
    type_error(s.settimeout, "1")
    type_error(s.setsockopt, "1", tsocket.SO_KEEPALIVE, 1)
    type_error(s.setsockopt, tsocket.SOL_SOCKET, "9", 1)
    type_error(s.setsockopt, tsocket.SOL_SOCKET, tsocket.SO_KEEPALIVE, "1")
    type_error(s.setsockopt, tsocket.SOL_SOCKET, tsocket.SO_KEEPALIVE, "abcd")
    type_error(s.getsockopt, tsocket.SOL_SOCKET, "4")
    type_error(s.shutdown, "1")
    assert s.recv(10) == b"data"  # nothing was consumed or changed by any of them
    u = tsocket.Socket(h.stack)
    type_error(u.connect, ("192.0.2.1", "80"))
    type_error(u.connect, "192.0.2.1:80")
    type_error(u.bind, ("0.0.0.0", "80"))
    assert u.state == tsocket.UNCONNECTED and u.tcb is None
