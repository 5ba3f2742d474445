# dual: cpython micropython
# Months of uptime in seconds (issue 8): 10,000 connect/close cycles in each close order leave no
# Tcb, record, port, ring or heap behind; a TIME-WAIT storm stays at the cap; a MemoryError at any
# point of connect() leaves nothing behind and the stack goes on.
import gc
import sys

from segment import ACK, FIN, PEER_IP, SYN, Harness
from tcpip import errors
from tcpip import tcp

MICROPYTHON = sys.implementation.name == "micropython"
IRS = 1000
MASK = 0xFFFFFFFF
CYCLES = 10000


def heap():
    gc.collect()
    if MICROPYTHON:
        return gc.mem_alloc()
    import tracemalloc
    return tracemalloc.get_traced_memory()[0]


def cycle(h, rport, we_close_first):
    """One connection: handshake, then closed by us first (TIME-WAIT) or by the peer first."""
    tcb = h.stack.tcp.connect(None, 0, PEER_IP, rport)
    h.feed(h.segment(tcb, SYN | ACK, IRS, (tcb.iss + 1) & MASK))
    if we_close_first:
        tcb.close()
        h.feed(h.segment(tcb, FIN | ACK, IRS + 1, (tcb.iss + 2) & MASK))
    else:
        h.feed(h.segment(tcb, FIN | ACK, IRS + 1, (tcb.iss + 1) & MASK))
        tcb.close()  # CLOSE-WAIT -> LAST-ACK
        h.feed(h.segment(tcb, ACK, IRS + 2, (tcb.iss + 2) & MASK))
    h.dev.sent = []
    assert tcb.state == tcp.CLOSED and tcb.error == 0, tcb.state_name()


def soak(we_close_first, n=CYCLES):
    """n cycles; the heap growth over them (MicroPython: gc.mem_alloc over all n; CPython:
    tracemalloc, which makes Python ~10x slower, over 1,000 more after them)."""
    h = Harness(time_wait_ms=200, time_wait_max=128)
    h.stack.trace = None  # the harness's trace keeps every event
    h.events = None
    t = h.stack.tcp
    k = [0]

    def run(count):
        for _ in range(count):
            cycle(h, 1000 + k[0] % 50, we_close_first)
            k[0] += 1
            h.advance(2)  # 100 connections in TIME-WAIT at any time when we close first

    run(200)  # warm up: the pool, the record table, the ARP entry
    before = heap()
    run(n)
    if not MICROPYTHON:
        import tracemalloc
        tracemalloc.start()
        try:
            before = heap()
            run(1000)
            grew = heap() - before
        finally:
            tracemalloc.stop()
    else:
        grew = heap() - before
    assert t.tcbs == []
    assert t.tw_n <= 101
    h.advance(300)
    assert t.tw_n == 0 and len(t.pool) <= t.pool_max
    c = h.stack.counters
    assert c.eth_drop_exception == 0 and c.tcp_tw_overflow == 0 and c.tcp_conn_limit == 0
    assert c.tcp_established == k[0]
    return grew


def test_ten_thousand_cycles_closing_first_leave_nothing_behind():
    grew = soak(True)
    assert grew < 8192, grew


def test_ten_thousand_cycles_closed_by_the_peer_leave_nothing_behind():
    grew = soak(False)
    assert grew < 8192, grew


def test_a_time_wait_storm_stops_at_the_cap():
    h = Harness(time_wait_max=64)  # 60 s of TIME-WAIT: nothing expires during the storm
    h.stack.trace = None  # the harness's trace keeps every event
    h.events = None
    for i in range(2000):
        cycle(h, 1000 + i, True)
    t = h.stack.tcp
    c = h.stack.counters
    assert t.tw_n == 64 and c.tcp_tw_overflow == 2000 - 64 and len(t.tw) == 64 * 24
    assert t.tcbs == [] and c.eth_drop_exception == 0
    # the stack goes on: a new connection to one of the 4-tuples still held is refused a port
    # only for that 4-tuple, any other works
    cycle(h, 7, True)
    assert c.tcp_tw_overflow == 2000 - 64 + 1


def _settle(h):
    """After a failed connect: nothing of it is left, and the next connect works."""
    t = h.stack.tcp
    assert t.tcbs == [], [x.state_name() for x in t.tcbs]
    assert t.next_deadline(h.clock.ticks_ms(), 54321) == 54321  # no timer of a lost Tcb
    h.dev.sent = []
    tcb = t.connect(None, 0, PEER_IP, 80)
    out = h.take()
    assert any(s.tcp is not None and s.tcp.flags == SYN and s.tcp.seq == tcb.iss for s in out), out
    assert t.tcbs == [tcb] and tcb.timer_on


def _cannot_allocate(frame):
    """The line is a bare `return name`: nothing there can raise MemoryError."""
    import linecache
    text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return text.startswith("return ") and text[7:].isidentifier()


def test_a_memory_error_anywhere_in_connect_leaves_nothing_behind():
    if MICROPYTHON:
        # no line tracing here: the heap is locked, so connect's first allocation fails
        import micropython
        h = Harness()
        micropython.heap_lock()
        try:
            h.stack.tcp.connect(None, 0, PEER_IP, 80)
            failed = False
        except Exception:  # (a tuple of types here would itself need the locked heap)
            failed = True
        finally:
            micropython.heap_unlock()
        assert failed
        _settle(h)
        return
    # CPython: a MemoryError raised at the k-th line connect executes inside lib/tcpip (but a bare
    # `return name`), for every k until connect runs through without one
    import os
    lib = os.path.join(os.path.dirname(os.path.abspath(tcp.__file__)), "")
    k = 0
    clean = 0
    while k < 2000:
        k += 1
        h = Harness()
        lines = [0]

        def tracer(frame, event, arg):
            if not frame.f_code.co_filename.startswith(lib):
                return None
            if event == "line" and not _cannot_allocate(frame):
                lines[0] += 1
                if lines[0] == k:
                    raise MemoryError("injected at line %d of connect" % k)
            return tracer

        sys.settrace(tracer)
        try:
            tcb = h.stack.tcp.connect(None, 0, PEER_IP, 80)
            err = None
        except (MemoryError, OSError) as e:
            err = e
        finally:
            sys.settrace(None)
        if err is None:
            if lines[0] < k:
                break  # connect ran through without meeting line k: every line was tried
            # absorbed where a MemoryError is expected (Tcp.ring collects and tries again)
            assert h.stack.tcp.tcbs == [tcb] and tcb.timer_on and tcb.state == tcp.SYN_SENT
            continue
        if isinstance(err, OSError):
            assert err.args[0] == errors.ENOMEM, err
            clean += 1
        try:
            _settle(h)
        except AssertionError:
            raise AssertionError("after %r at line %d" % (err, k))
    assert k > 50 and lines[0] < k, (k, lines[0])
    assert clean > 10  # failures after the Tcb existed were turned into OSError(ENOMEM)


def test_a_memory_error_anywhere_in_the_passive_open_leaves_nothing_behind():
    # the accept path: the SYN (a half-open record, the SYN-ACK) and the ACK that completes the
    # handshake (the Tcb and its rings); a MemoryError at any line of either leaves no connection
    # outside the accept queue, and the next handshake works
    from segment import OUR_IP, OUR_MAC, PEER_MAC, eth, ip_packet, tcp_segment
    from wirerep import ethernet, ipv4

    def seg(flags, seq, ack=0, sport=40000):
        t = tcp_segment(PEER_IP, OUR_IP, sport, 8080, seq, ack, flags, 64240, b"", 1460 if flags & SYN else 0)
        return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(PEER_IP, OUR_IP, ipv4.PROTO_TCP, t))

    def consistent(h, x):
        t = h.stack.tcp
        for c in t.tcbs:
            assert c in x.queue, c.state_name()  # no connection outside the queue
        assert x.syn_n <= len(x.syn_dl)
        # and the next handshake works
        h.dev.sent = []
        h.feed(seg(SYN, 9000, sport=41000))
        out = [s for s in h.take() if s.tcp is not None]
        assert len(out) == 1 and out[0].tcp.flags == SYN | ACK, out
        h.feed(seg(ACK, 9001, out[0].tcp.seq + 1, sport=41000))
        assert x.queue and x.queue[-1].remote_port == 41000

    if MICROPYTHON:
        import micropython
        for phase in ("syn", "ack"):
            h = Harness()
            x = h.stack.tcp.listen(None, 8080, 4)
            if phase == "ack":
                h.feed(seg(SYN, 5000))
                iss = h.take()[0].tcp.seq
            f = bytearray(seg(SYN, 5000) if phase == "syn" else seg(ACK, 5001, iss + 1))
            n = len(f)
            micropython.heap_lock()
            try:
                h.stack.input(f, n)
            except Exception:  # (poll() would count it: eth_drop_exception)
                pass
            finally:
                micropython.heap_unlock()
            consistent(h, x)
        return
    import os
    lib = os.path.join(os.path.dirname(os.path.abspath(tcp.__file__)), "")
    for phase in ("syn", "ack"):
        k = 0
        while k < 3000:
            k += 1
            h = Harness()
            h.stack.trace = None
            x = h.stack.tcp.listen(None, 8080, 4)
            iss = 0
            if phase == "ack":
                h.feed(seg(SYN, 5000))
                iss = h.take()[0].tcp.seq
            frame = seg(SYN, 5000) if phase == "syn" else seg(ACK, 5001, iss + 1)
            lines = [0]

            def tracer(frame_, event, arg):
                # the TCP layer's lines (tcp*.py): the stack's own frame handling before them
                # is not what this test is about
                f = frame_.f_code.co_filename
                if not f.startswith(lib) or not os.path.basename(f).startswith("tcp"):
                    return None
                if event == "line" and not _cannot_allocate(frame_):
                    lines[0] += 1
                    if lines[0] == k:
                        raise MemoryError("injected at line %d" % k)
                return tracer

            h.dev.inbox.append(frame)
            sys.settrace(tracer)
            try:
                h.stack.poll()  # poll() catches and counts what escapes a frame's handling
            finally:
                sys.settrace(None)
            if lines[0] < k:
                break  # every line of this phase was tried
            try:
                consistent(h, x)
            except AssertionError as e:
                raise AssertionError("%s phase, MemoryError at line %d: %s" % (phase, k, e))
        assert k > 20, (phase, k)
