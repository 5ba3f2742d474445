# dual: cpython micropython
# TIME-WAIT without the connection (issue 8, finding 2): once the application has closed, TIME-WAIT
# is a 24-byte record (Tcp.time_wait, Linux inet_timewait_sock) that answers for the 4-tuple; the
# records are capped (time_wait_max, Linux tcp_max_tw_buckets) and so are connections
# (max_connections: ENOBUFS, counted), and connect() is all or nothing. Last, when connect() may
# reuse a 4-tuple still in TIME-WAIT (only if the new ISN is past the old connection's).
from segment import ACK, FIN, PEER_IP, PSH, RST, SYN, Harness
from tcpip import errors
from tcpip import tcp

IRS = 1000
MASK = 0xFFFFFFFF


def to_time_wait(h, rport=80, close_first=True):
    """A connection to PEER_IP:rport, established, closed by us (after the peer, when not
    close_first), the peer's FIN ACKed: TIME-WAIT."""
    tcb = h.stack.tcp.connect(None, 0, PEER_IP, rport)
    h.take()
    h.feed(h.segment(tcb, SYN | ACK, IRS, (tcb.iss + 1) & MASK))
    h.take()
    if close_first:
        tcb.close()
    else:
        tcb.shutdown_write()
    assert h.expect_tcp(FIN | ACK).tcp.seq == (tcb.iss + 1) & MASK
    h.feed(h.segment(tcb, FIN | ACK, IRS + 1, (tcb.iss + 2) & MASK))
    out = h.take()
    assert len(out) == 1 and out[0].tcp.flags == ACK and out[0].tcp.ack == IRS + 2, out
    return tcb


def established(**opts):
    """An ESTABLISHED connection from Harness.establish, in absolute numbers: the peer's IRS is
    IRS (1000), our ISS the stack's own (no wrap-around)."""
    h = Harness(**opts)
    tcb = h.establish(irs=IRS)
    return h, tcb


def test_a_closed_connection_waits_as_a_24_byte_record_without_rings():
    h = Harness()
    pool = len(h.stack.tcp.pool)
    tcb = to_time_wait(h)
    t = h.stack.tcp
    assert tcb.state == tcp.CLOSED and t.tcbs == [] and t.tw_n == 1
    assert len(t.tw) // t.tw_n <= 24 * 4  # the table grows 4 records at a time
    r = bytes(t.tw[0:24])
    assert r[0:4] == tcb.local_addr and r[4:8] == PEER_IP
    assert r[8] << 8 | r[9] == tcb.local_port and r[10] << 8 | r[11] == 80
    assert int.from_bytes(r[12:16], "big") == (tcb.iss + 2) & MASK  # SND.NXT: after our FIN
    assert int.from_bytes(r[16:20], "big") == IRS + 2                 # RCV.NXT: after theirs
    assert len(t.pool) == pool + 2  # both rings went back
    assert tcb.rx is tcp.NO_RING and tcb.tx is tcp.NO_RING


def test_the_record_answers_for_the_4_tuple():
    h = Harness(time_wait_ms=5000)
    tcb = to_time_wait(h)
    c = h.stack.counters
    snd = (tcb.iss + 2) & MASK
    # a bare ACK at RCV.NXT: nothing to say
    h.feed(h.segment(tcb, ACK, IRS + 2, snd))
    h.expect_nothing()
    # the peer's FIN again (our ACK was lost): ACKed, 2 MSL starts over
    h.advance(3000)
    h.feed(h.segment(tcb, FIN | ACK, IRS + 1, snd))
    s = h.expect_tcp(ACK, seq=snd, ack=IRS + 2)
    assert s.tcp.window == tcb.last_wnd
    # data or a SYN: an ACK, at most one per invalid_ratelimit_ms
    h.feed(h.segment(tcb, ACK | PSH, IRS + 2, snd, payload=b"late"))
    h.expect_tcp(ACK, seq=snd, ack=IRS + 2)
    h.feed(h.segment(tcb, SYN, IRS + 100000, 0))
    h.expect_nothing()
    assert c.tcp_ack_ratelimited == 1
    h.advance(500)
    h.feed(h.segment(tcb, SYN, IRS + 100000, 0))
    h.expect_tcp(ACK, seq=snd, ack=IRS + 2)
    # a RST off RCV.NXT is dropped; the record stays until 5 s after the last FIN
    h.feed(h.segment(tcb, RST, IRS + 1, 0))
    h.expect_nothing()
    assert c.tcp_rst_blind_dropped == 1 and h.stack.tcp.tw_n == 1
    h.advance(4499)
    assert h.stack.tcp.tw_n == 1
    h.advance(1)
    assert h.stack.tcp.tw_n == 0
    # then the 4-tuple is nobody's: a RST for the next segment
    h.feed(h.segment(tcb, ACK, IRS + 2, snd))
    assert h.expect_tcp(RST).tcp.seq == snd
    assert c.eth_drop_exception == 0


def test_a_rst_at_rcv_nxt_ends_the_record():
    h = Harness()
    tcb = to_time_wait(h)
    h.feed(h.segment(tcb, RST, IRS + 2, 0))
    h.expect_nothing()
    assert h.stack.tcp.tw_n == 0 and h.stack.counters.tcp_rst_received == 1


def test_closing_a_socket_already_in_time_wait_makes_the_record():
    h = Harness(time_wait_ms=5000)
    tcb = to_time_wait(h, close_first=False)
    assert tcb.state == tcp.TIME_WAIT and h.stack.tcp.tw_n == 0  # the application still holds it
    h.advance(2000)
    tcb.close()
    assert tcb.state == tcp.CLOSED and h.stack.tcp.tcbs == [] and h.stack.tcp.tw_n == 1
    h.advance(2999)  # what was left of its 2 MSL
    assert h.stack.tcp.tw_n == 1
    h.advance(1)
    assert h.stack.tcp.tw_n == 0


def test_time_wait_records_are_capped_and_the_overflow_counted():
    h = Harness(time_wait_max=3)
    for p in range(5):
        to_time_wait(h, 80 + p)
    t = h.stack.tcp
    assert t.tw_n == 3 and h.stack.counters.tcp_tw_overflow == 2
    assert len(t.tw) == 3 * 24  # grown to the cap, no further
    assert t.tcbs == []
    # the overflowed 4-tuples are free at once (Linux: no TIME-WAIT for them either)
    ports = [t.tw[24 * i + 10] << 8 | t.tw[24 * i + 11] for i in range(3)]
    assert sorted(ports) == [80, 81, 82]


def test_records_expire_in_any_order():
    h = Harness(time_wait_ms=1000)
    for p in range(4):
        to_time_wait(h, 80 + p)
        h.advance(100)
    t = h.stack.tcp
    assert t.tw_n == 4
    h.advance(1000 - 400 + 150)  # the first two are due
    assert t.tw_n == 2
    assert t.next_deadline(h.clock.ticks_ms(), 100000) == 50
    h.advance(200)
    assert t.tw_n == 0
    assert t.next_deadline(h.clock.ticks_ms(), 100000) == 100000


def test_the_connection_limit_is_an_oserror_and_the_stack_stays_usable():
    h = Harness(max_connections=3)
    tcbs = [h.stack.tcp.connect(None, 0, PEER_IP, 80 + i) for i in range(3)]
    h.take()
    try:
        h.stack.tcp.connect(None, 0, PEER_IP, 99)
        raise AssertionError("a fourth connection")
    except OSError as e:
        assert e.args[0] == errors.ENOBUFS
    assert h.stack.counters.tcp_conn_limit == 1
    assert len(h.stack.tcp.tcbs) == 3
    h.expect_nothing()
    tcbs[0].close()  # SYN-SENT: it just goes
    t = h.stack.tcp.connect(None, 0, PEER_IP, 99)
    assert t.state == tcp.SYN_SENT and len(h.stack.tcp.tcbs) == 3
    # a TIME-WAIT record is no connection: it does not count
    h2 = Harness(max_connections=1)
    to_time_wait(h2)
    to_time_wait(h2, 81)
    assert h2.stack.tcp.tw_n == 2


def test_a_memory_error_in_connect_leaves_nothing_behind():
    # the SYN's send fails for want of memory: the Tcb leaves the table, its rings go back, and
    # connect() raises OSError(ENOMEM); the next connect works
    h = Harness()
    t = h.stack.tcp
    real = tcp.tcp_out.send_syn
    pool = len(t.pool)

    def failing(tcb):
        raise MemoryError()

    tcp.tcp_out.send_syn = failing
    try:
        try:
            t.connect(None, 0, PEER_IP, 80)
            raise AssertionError("no error")
        except OSError as e:
            assert e.args[0] == errors.ENOMEM
    finally:
        tcp.tcp_out.send_syn = real
    assert t.tcbs == [] and t.next_deadline(h.clock.ticks_ms(), 12345) == 12345
    assert len(t.pool) == pool + 2 or pool >= t.pool_max
    tcb = t.connect(None, 0, PEER_IP, 80)
    assert h.expect_tcp(SYN).tcp.seq == tcb.iss


def test_the_new_limits_are_checked_when_a_config_is_made():
    for kw in ({"max_connections": 0}, {"time_wait_max": -1}, {"port_table_size": 300}):
        try:
            tcp.TcpConfig(**kw)
            raise AssertionError(kw)
        except ValueError:
            pass
    cfg = tcp.TcpConfig(max_connections=4, time_wait_max=0, port_table_size=1024)
    assert (cfg.max_connections, cfg.time_wait_max, cfg.port_table_size) == (4, 0, 1024)
    try:
        tcp.TcpConfig(max_conections=4)
        raise AssertionError("a misspelt option")
    except TypeError:
        pass


def test_time_wait_max_0_means_no_time_wait_at_all():
    h = Harness(time_wait_max=0)
    tcb = to_time_wait(h)
    assert tcb.state == tcp.CLOSED and h.stack.tcp.tw_n == 0
    assert h.stack.counters.tcp_tw_overflow == 1


def test_the_tcp_layer_refuses_port_0_too():
    h = Harness()
    try:
        h.stack.tcp.connect(None, 0, PEER_IP, 0)
        raise AssertionError("port 0")
    except OSError as e:
        assert e.args[0] == errors.EADDRNOTAVAIL
    h.expect_nothing()
    assert h.stack.tcp.tcbs == []


def test_time_wait_tuple_reused_only_when_safe():
    # one port only: the next connect to the same destination needs the TIME-WAIT 4-tuple
    h, tcb = established(port_low=45000, port_high=45000)
    tcb.close()
    h.take()
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 2))
    h.feed(h.segment(tcb, FIN | ACK, IRS + 1, tcb.iss + 2))
    h.take()
    assert tcb.state == tcp.CLOSED and h.stack.tcp.tw_n == 1  # TIME-WAIT, as a record
    try:
        h.stack.tcp.connect(None, 0, PEER_IP, 80)
        raise AssertionError("reused a TIME-WAIT younger than 1 s")
    except OSError as e:
        assert e.args[0] == errors.EADDRNOTAVAIL
    h.advance(1000)
    t2 = h.stack.tcp.connect(None, 0, PEER_IP, 80)
    assert t2.local_port == 45000
    assert h.stack.tcp.tw_n == 0
    assert h.stack.counters.tcp_time_wait_reused == 1
    # its ISN lies beyond everything the old incarnation sent
    from wirerep.tcp import seq_gt
    assert seq_gt(t2.iss, tcb.snd_nxt)


def test_time_wait_not_reused_when_isn_would_not_advance():
    h, tcb = established(port_low=45000, port_high=45000)
    tcb.close()
    h.take()
    h.feed(h.segment(tcb, ACK, IRS + 1, tcb.iss + 2))
    h.feed(h.segment(tcb, FIN | ACK, IRS + 1, tcb.iss + 2))
    h.advance(1000)
    # pretend the old connection sent 1 GB: its TIME-WAIT record's SND.NXT
    r = h.stack.tcp.tw
    v = (int.from_bytes(bytes(r[12:16]), "big") + 0x40000000) & 0xFFFFFFFF
    r[12:16] = v.to_bytes(4, "big")
    try:
        h.stack.tcp.connect(None, 0, PEER_IP, 80)
        raise AssertionError("reused an unsafe TIME-WAIT")
    except OSError as e:
        assert e.args[0] == errors.EADDRNOTAVAIL
