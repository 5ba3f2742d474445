# dual: cpython micropython
# connect() semantics of the socket object (Linux inet_stream_connect), scripted with a fake peer.
from segment import ACK, FIN, PEER_IP, PSH, RST, SYN, Harness
from tcpip import errors
from tcpip import tcp
from tcpip.socket import AF_INET, SO_ERROR, SOL_SOCKET, Socket


def raises(errno, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.args[0] == errno, "got %s, expected %s" % (errors.name(e.args[0]), errors.name(errno))
        return
    raise AssertionError("no OSError(%s)" % errors.name(errno))


def nonblocking_socket(h):
    s = Socket(h.stack)
    s.setblocking(False)
    return s


def test_nonblocking_connect_einprogress_then_ealready_then_connected_then_eisconn():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))
    h.expect_tcp(SYN)
    raises(errors.EALREADY, s.connect, ("192.0.2.1", 80))
    assert s.getsockopt(SOL_SOCKET, SO_ERROR) == 0
    tcb = s.tcb
    h.feed(h.segment(tcb, SYN | ACK, 100, tcb.iss + 1, mss=1460))
    h.expect_tcp(ACK)
    s.connect(("192.0.2.1", 80))  # completes: returns without error, as Linux does once
    raises(errors.EISCONN, s.connect, ("192.0.2.1", 80))
    assert s.getpeername() == ("192.0.2.1", 80)
    assert s.getsockname() == ("192.0.2.2", tcb.local_port)


def test_nonblocking_connect_failure_reported_by_next_connect():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 81))
    tcb = s.tcb
    h.take()
    h.feed(h.segment(tcb, RST | ACK, 0, tcb.iss + 1))
    raises(errors.ECONNREFUSED, s.connect, ("192.0.2.1", 81))
    assert s.tcb is None
    # unconnected again: a new connect starts a new attempt
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 81))
    h.expect_tcp(SYN)


def test_so_error_reports_and_clears_the_failure():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 81))
    tcb = s.tcb
    h.feed(h.segment(tcb, RST | ACK, 0, tcb.iss + 1))
    assert s.getsockopt(SOL_SOCKET, SO_ERROR) == errors.ECONNREFUSED
    assert s.getsockopt(SOL_SOCKET, SO_ERROR) == 0


def test_failed_connect_releases_the_ephemeral_port():
    h = Harness(port_low=40000, port_high=40000)
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 81))
    # the only port is taken: a second socket to the same destination cannot get one
    s2 = nonblocking_socket(h)
    raises(errors.EADDRNOTAVAIL, s2.connect, ("192.0.2.1", 81))
    tcb = s.tcb
    h.feed(h.segment(tcb, RST | ACK, 0, tcb.iss + 1))
    raises(errors.ECONNREFUSED, s.connect, ("192.0.2.1", 81))
    raises(errors.EINPROGRESS, s2.connect, ("192.0.2.1", 81))
    assert s2.tcb.local_port == 40000


def answer_syn_while_blocked(h, s, reply):
    """While a blocking call waits (the fake device's wait() advances virtual time), the peer
    answers our SYN with reply(tcb)."""
    dev = h.dev
    plain_wait = dev.wait

    def wait(ms):
        plain_wait(ms)
        if s.tcb is not None and s.tcb.state == tcp.SYN_SENT and not dev.inbox:
            dev.inbox.append(reply(s.tcb))

    dev.wait = wait
    h.stack._dev_wait = wait  # the stack takes the device's wait() once, when it is made


def test_blocking_connect_waits_for_established():
    h = Harness()
    s = Socket(h.stack)
    s.settimeout(5)

    answer_syn_while_blocked(h, s, lambda tcb: h.segment(tcb, SYN | ACK, 500, tcb.iss + 1, mss=1000))
    s.connect(("192.0.2.1", 80))
    assert s.tcb.state == tcp.ESTABLISHED and s.tcb.mss == 1000


def test_blocking_connect_socket_timeout_is_etimedout_and_unconnected():
    h = Harness()
    s = Socket(h.stack)
    s.settimeout(2.5)
    t0 = h.clock.ticks_ms()
    raises(errors.ETIMEDOUT, s.connect, ("192.0.2.1", 80))
    assert h.clock.ticks_diff(h.clock.ticks_ms(), t0) == 2500
    syns = [x for x in h.take() if x.tcp is not None and x.tcp.flags == SYN]
    assert len(syns) == 2  # at 0 and 1000 ms; the third would go at 3000, past the 2.5 s timeout
    assert s.tcb is None and h.stack.tcp.tcbs == []
    # the socket can connect again
    s.setblocking(False)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))


def test_blocking_connect_without_timeout_ends_with_syn_retries():
    h = Harness(syn_retries=2)
    s = Socket(h.stack)
    t0 = h.clock.ticks_ms()
    raises(errors.ETIMEDOUT, s.connect, ("192.0.2.1", 80))
    assert h.clock.ticks_diff(h.clock.ticks_ms(), t0) == 7000  # SYNs at 0, 1 s, 3 s; gives up at 7 s


def test_blocking_connect_refused():
    h = Harness()
    s = Socket(h.stack)
    s.settimeout(5)
    answer_syn_while_blocked(h, s, lambda tcb: h.segment(tcb, RST | ACK, 0, tcb.iss + 1))
    raises(errors.ECONNREFUSED, s.connect, ("192.0.2.1", 80))
    assert s.tcb is None


def test_af_unspec_connect_disconnects():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))
    tcb = s.tcb
    h.feed(h.segment(tcb, SYN | ACK, 100, tcb.iss + 1))
    h.take()
    s.connect(None)  # AF_UNSPEC-style: abort with RST, back to unconnected
    h.expect_tcp(RST | ACK, seq=tcb.iss + 1)
    assert s.tcb is None and h.stack.tcp.tcbs == []
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))


def test_af_unspec_while_connecting_sends_nothing():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))
    h.take()
    s.connect(None)
    h.expect_nothing()
    assert h.stack.tcp.tcbs == []


def test_bad_addresses_are_clear_errors():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.EINVAL, s.connect, ("192.0.2.1",))
    raises(errors.EINVAL, s.connect, ("192.0.2.1", 80, 1))
    raises(errors.EINVAL, s.connect, ("192.0.2.1", 70000))
    raises(errors.EINVAL, s.connect, ("192.0.2.1", -1))
    raises(errors.EINVAL, s.connect, ("192.0.2.256", 80))
    raises(errors.EINVAL, s.connect, ("not an address", 80))
    # wrong types are TypeError, as both runtimes' own sockets say (issue 9, item 3)
    for addr in ("192.0.2.1", ("192.0.2.1", "80"), (None, 80), (1234, 80)):
        try:
            s.connect(addr)
        except TypeError:
            continue
        raise AssertionError("no TypeError from connect(%r)" % (addr,))
    raises(errors.EAFNOSUPPORT, s.connect, ("2001:db8::1", 80))
    raises(errors.EAFNOSUPPORT, s.connect, ("2001:db8::1", 80, 0, 0))
    raises(errors.EAFNOSUPPORT, Socket, h.stack, 10)
    h.expect_nothing()
    assert s.tcb is None


def test_unreachable_destinations_raise_enetunreach():
    h = Harness()
    s = nonblocking_socket(h)
    raises(errors.ENETUNREACH, s.connect, ("255.255.255.255", 80))
    raises(errors.ENETUNREACH, s.connect, ("224.0.0.251", 80))
    raises(errors.ENETUNREACH, s.connect, ("192.0.2.255", 80))
    h.expect_nothing()


def test_explicit_bind_is_honoured():
    h = Harness()
    s = nonblocking_socket(h)
    s.bind(("0.0.0.0", 5555))
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))
    syn = h.expect_tcp(SYN)
    assert syn.tcp.src_port == 5555
    # a second socket binding the same port is refused; binding another address too
    s2 = Socket(h.stack)
    raises(errors.EADDRINUSE, s2.bind, ("0.0.0.0", 5555))
    raises(errors.EADDRNOTAVAIL, s2.bind, ("192.0.2.77", 0))


def test_bound_port_4tuple_clash_is_eaddrnotavail():
    h = Harness()
    s = nonblocking_socket(h)
    s.bind(("192.0.2.2", 5555))
    raises(errors.EINPROGRESS, s.connect, ("192.0.2.1", 80))
    # the same 4-tuple cannot be used twice (a raw second connect on the TCP layer)
    raises(errors.EADDRNOTAVAIL, h.stack.tcp.connect, None, 5555, PEER_IP, 80)
    # another destination port from the same bound port is fine
    t = h.stack.tcp.connect(None, 5555, PEER_IP, 81)
    assert t.local_port == 5555


def test_bind_port_zero_never_lands_on_a_used_port():
    h = Harness(port_low=40000, port_high=40001)
    a = nonblocking_socket(h)
    raises(errors.EINPROGRESS, a.connect, ("192.0.2.1", 80))
    b = Socket(h.stack)
    b.bind(("0.0.0.0", 0))
    assert b.bound_port in (40000, 40001) and b.bound_port != a.tcb.local_port


def test_closed_socket_refuses_connect():
    h = Harness()
    s = Socket(h.stack)
    s.close()
    raises(errors.EBADF, s.connect, ("192.0.2.1", 80))


def test_send_and_recv_before_connect_are_enotconn():
    h = Harness()
    s = Socket(h.stack)
    raises(errors.ENOTCONN, s.send, b"x")
    raises(errors.ENOTCONN, s.recv, 10)
