# dual: cpython micropython
# The listening socket (tcpip.listener): bind/listen/accept blocking, with a timeout and
# non-blocking, POLLIN on a listener through tcpip.poller, what accepted sockets inherit, close()
# of a listener, SO_REUSEADDR with TIME-WAIT on the port, and the errors of misuse.
from segment import (ACK, FIN, OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, PSH, RST, SYN, Harness, eth,
                     ip_packet, tcp_segment)
from tcpip import errors
from tcpip import socket as tsocket
from tcpip.poller import POLLIN, POLLOUT, poll
from tcpip.socket import SO_REUSEADDR, SOL_SOCKET, TCP_NODELAY, IPPROTO_TCP
from wirerep import ethernet
from wirerep import ipv4

PORT = 8080
MASK = 0xFFFFFFFF


def seg(flags, seq, ack=0, sport=40000, payload=b"", mss=1460, dport=PORT):
    t = tcp_segment(PEER_IP, OUR_IP, sport, dport, seq, ack, flags, 64240, payload, mss if flags & SYN else 0)
    return eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4, ip_packet(PEER_IP, OUR_IP, ipv4.PROTO_TCP, t))


def raises(errno, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.args[0] == errno, (e.args[0], errno)
        return
    raise AssertionError("no OSError(%d)" % errno)


def server(backlog=2, **opts):
    h = Harness(**opts)
    tsocket.set_default_stack(h.stack)
    s = tsocket.socket()
    s.bind(("0.0.0.0", PORT))
    s.listen(backlog)
    return h, s


def client_connects(h, sport=40000, seq=1000, payload=b""):
    """A peer completes the handshake (and sends payload with its ACK); our ISS."""
    h.feed(seg(SYN, seq, sport=sport))
    out = h.take()
    assert len(out) == 1 and out[0].tcp.flags == SYN | ACK, out
    iss = out[0].tcp.seq
    h.feed(seg(ACK | (PSH if payload else 0), seq + 1, iss + 1, sport=sport, payload=payload))
    return iss


def test_accept_hands_out_a_connected_socket_and_the_peer_address():
    h, s = server()
    s.setblocking(False)
    raises(errors.EAGAIN, s.accept)
    iss = client_connects(h, payload=b"ping")
    c, addr = s.accept()
    assert addr == ("192.0.2.1", 40000)
    assert c.getpeername() == ("192.0.2.1", 40000) and c.getsockname() == ("192.0.2.2", PORT)
    assert c.recv(10) == b"ping"
    assert c.send(b"pong") == 4
    h.advance(0)
    out = h.take()
    assert [(o.tcp.seq, o.payload) for o in out if o.payload] == [((iss + 1) & MASK, b"pong")]
    raises(errors.EAGAIN, s.accept)  # nothing else waits
    c.close()
    s.close()


def test_blocking_accept_waits_and_times_out():
    h, s = server()
    s.settimeout(2)
    t0 = h.clock.ticks_ms()
    raises(errors.ETIMEDOUT, s.accept)
    assert h.clock.ticks_ms() - t0 >= 2000
    client_connects(h)
    t1 = h.clock.ticks_ms()
    c, addr = s.accept()  # a connection waits: no waiting
    assert h.clock.ticks_ms() == t1 and addr == ("192.0.2.1", 40000)


def test_poll_reports_pollin_on_a_listener_with_a_connection_waiting():
    h, s = server()
    p = poll(h.stack)
    p.register(s, POLLIN | POLLOUT)
    assert p.poll(0) == []
    client_connects(h, sport=40001)
    r = p.poll(0)
    assert r == [(s, POLLIN)], r
    c, _ = s.accept()
    assert p.poll(0) == []
    # MicroPython's stream ioctl: what select.poll and asyncio ask
    assert s.ioctl(3, POLLIN) == 0
    client_connects(h, sport=40002)
    assert s.ioctl(3, POLLIN | POLLOUT) == POLLIN


def test_accepted_sockets_inherit_nodelay_and_the_listener_closes_cleanly():
    h = Harness()
    tsocket.set_default_stack(h.stack)
    s = tsocket.socket()
    s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    s.bind(("0.0.0.0", PORT))
    s.listen(4)
    client_connects(h, sport=40001)
    client_connects(h, sport=40002)
    c, _ = s.accept()
    assert c.tcb.nodelay and c.getsockopt(IPPROTO_TCP, TCP_NODELAY)
    h.take()
    s.close()  # the second connection was never accepted: reset (Linux inet_csk_listen_stop)
    out = h.take()
    assert [(o.tcp.dst_port, o.tcp.flags & RST) for o in out] == [(40002, RST)]
    assert c.tcb.state == 3  # the accepted one lives on
    raises(errors.EBADF, s.accept)
    h.feed(seg(SYN, 5000, sport=40003))
    assert [o.tcp.flags for o in h.take()] == [RST | ACK]  # nobody listens


def test_listen_without_bind_takes_an_ephemeral_port_and_misuse_is_refused():
    h = Harness()
    tsocket.set_default_stack(h.stack)
    s = tsocket.socket()
    s.listen()
    port = s.getsockname()[1]
    assert 32768 <= port <= 60999
    s.listen(5)  # again: just a new backlog
    c = tsocket.socket()
    raises(errors.EINVAL, c.accept)  # not listening
    raises(errors.EADDRINUSE, c.bind, ("0.0.0.0", port))
    c.settimeout(0)
    try:
        c.connect(("192.0.2.1", 80))
    except OSError:
        pass
    raises(errors.EINVAL, c.listen, 1)  # connecting: no listen (Linux inet_listen)
    s.close()
    raises(errors.EBADF, s.listen, 1)


def test_so_reuseaddr_lets_a_restarted_server_bind_beside_time_wait():
    h, s = server()
    iss = client_connects(h)
    c, _ = s.accept()
    c.close()  # the server closes first: TIME-WAIT on port 8080
    fin = [o for o in h.take() if o.tcp.flags & FIN][0]
    h.feed(seg(ACK | FIN, 1001, fin.tcp.seq + 1))
    h.take()
    assert h.stack.tcp.tw_n == 1
    s.close()
    s2 = tsocket.socket()
    raises(errors.EADDRINUSE, s2.bind, ("0.0.0.0", PORT))  # without SO_REUSEADDR, as Linux
    s2.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    s2.bind(("0.0.0.0", PORT))
    s2.listen(1)
    assert iss  # (the first connection's ISS: it was made)


def test_bind_to_the_empty_host_means_any_address():
    # MicroPython web server examples write s.bind(("", 80)) (INADDR_ANY, as CPython and lwIP)
    h = Harness()
    tsocket.set_default_stack(h.stack)
    s = tsocket.socket()
    s.bind(("", PORT))
    assert s.getsockname() == ("0.0.0.0", PORT)
    s.listen(1)
    client_connects(h)
    c, addr = s.accept()
    assert addr == ("192.0.2.1", 40000) and c.getsockname() == ("192.0.2.2", PORT)
    c2 = tsocket.socket()
    c2.settimeout(0)
    raises(errors.ENETUNREACH, c2.connect, ("", 80))  # nowhere to connect to (0.0.0.0)
