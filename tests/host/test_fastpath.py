# dual: cpython micropython
# Header prediction (tcpip.fastpath, tcp_in.fast_input, the template branch of tcp_out.emit) must
# be invisible: the same segments give the same frames on the wire and the same connection state
# as the full RFC 9293 path (TcpConfig(header_prediction=False)). The bulk drivers of
# test_tcp_seq_relative.py (reordering, duplicates, losses, bases moving every 3 KB, sequence
# numbers wrapping 2**32) run on both paths; the kernels (viper on MicroPython, Python on CPython)
# are checked against the Python twins and against what the full path builds.
import test_tcp_seq_relative as rel_tests
from segment import ACK, FIN, PSH, RST, SYN, Harness
from tcpcase import IRS, ISS, MSS, fix_isn, sq
from tcpip import fastpath
from tcpip import _pure
from tcpip import stack as stack_mod
from tcpip import tcp

_STATE = ("state", "s_una", "s_nxt", "s_max", "r_nxt", "snd_wnd", "max_snd_wnd", "r_wl1", "s_wl2",
          "cwnd", "ssthresh", "dupacks", "in_recovery", "rx_len", "rx_head", "tx_len", "tx_head",
          "ack_owed", "last_wnd", "r_wedge", "srtt", "rttvar", "rto", "retries", "timer_on",
          "delack_on", "s_bhi", "s_blo", "r_bhi", "r_blo", "ooo_n")


def masked(frame):
    """A frame without its IPv4 identification and header checksum: the fast path numbers its
    datagrams per connection (as Linux's inet_id), the full path per stack."""
    b = bytearray(frame)
    if len(b) >= 34 and b[12] == 8 and b[13] == 0:
        b[18] = b[19] = b[24] = b[25] = 0
    return bytes(b)


class Log:
    """Every frame the stack sends, and how often the fast path took a segment."""

    def __init__(self, h):
        self.frames = []
        self.fast = 0
        self.coalesced = 0  # pure ACKs of a batch handled as the last of them (Stack.input)
        send = h.dev.send

        def record(buf, n):
            self.frames.append(masked(buf[:n]))
            send(buf, n)

        h.dev.send = record


def connect(rx=8192, tx=16384, predict=True):
    """rel_tests.connect with a fixed local port (both runs must put the same bytes on the wire)."""
    h = Harness(rx_buffer=rx, tx_buffer=tx, header_prediction=predict)
    fix_isn(h, ISS)
    tcb = h.stack.tcp.connect(None, 40000, h.stack.route.gateway, 80)
    h.expect_tcp(SYN, seq=ISS)
    tcb.rebase_at = rel_tests.REBASE_AT
    opts = b"\x02\x04" + bytes((MSS >> 8, MSS & 0xFF)) + b"\x01\x01\x04\x02"
    h.feed(h.segment(tcb, SYN | ACK, IRS, sq(ISS + 1), 65535, options=opts))
    h.expect_tcp(ACK, seq=sq(ISS + 1), ack=sq(IRS + 1))
    assert tcb.state == tcp.ESTABLISHED and tcb.sack_ok
    return h, tcb


def run_both(drive):
    """drive(h, tcb) on a connection with header prediction and on one without; returns both
    (log, tcb) pairs. The fast path's entry is counted through the stack's binding of it."""
    out = []
    real = stack_mod._fast_input
    real_acks = stack_mod._fast_acks
    for predict in (True, False):
        h, tcb = connect(predict=predict)
        log = Log(h)

        def counting(t, buf, r):
            log.fast += 1
            return real(t, buf, r)

        def counting_acks(t, r, k):
            log.fast += k
            log.coalesced += k - 1
            return real_acks(t, r, k)

        stack_mod._fast_input = counting
        stack_mod._fast_acks = counting_acks
        try:
            drive(h, tcb)
        finally:
            stack_mod._fast_input = real
            stack_mod._fast_acks = real_acks
        out.append((log, tcb))
    return out


def same(a, b):
    (la, ta), (lb, tb) = a, b
    assert len(la.frames) == len(lb.frames), (len(la.frames), len(lb.frames))
    for i in range(len(la.frames)):
        assert la.frames[i] == lb.frames[i], (i, la.frames[i], lb.frames[i])
    for k in _STATE:
        assert getattr(ta, k) == getattr(tb, k), (k, getattr(ta, k), getattr(tb, k))
    assert lb.fast == 0


def test_download_is_the_same_on_both_paths():
    def drive(h, tcb):
        rel_tests.download(h, tcb, 120000, rel_tests.Watch(tcb), seed=5)

    a, b = run_both(drive)
    same(a, b)
    assert a[0].fast > 30, a[0].fast  # most segments took the fast path


def test_upload_is_the_same_on_both_paths():
    def drive(h, tcb):
        rel_tests.upload(h, tcb, 120000, rel_tests.Watch(tcb), seed=6)

    a, b = run_both(drive)
    same(a, b)
    assert a[0].fast > 20, a[0].fast  # the new ACKs


def test_both_ways_then_close_is_the_same_on_both_paths():
    def drive(h, tcb):
        w = rel_tests.Watch(tcb)
        rel_tests.download(h, tcb, 30000, w, seed=7)
        rel_tests.upload(h, tcb, 30000, w, seed=8)
        tcb.close()
        nxt = tcb.rcv_nxt
        h.feed(h.segment(tcb, ACK | FIN, nxt, tcb.snd_nxt, 65535))
        # TIME-WAIT, as a record: the application closed (Tcp.time_wait)
        assert tcb.state == tcp.CLOSED and h.stack.tcp.tw_n == 1

    a, b = run_both(drive)
    same(a, b)


# -- the kernels -----------------------------------------------------------------------------
def _segment_from_peer(h, tcb, payload, flags=ACK, window=65535, ack_off=0):
    return h.segment(tcb, flags, tcb.rcv_nxt, sq(tcb.snd_una + ack_off), window, payload)


def _hot(rx=8192, predict=True):
    h, tcb = connect(rx=rx, predict=predict)
    h.feed(h.segment(tcb, ACK, tcb.rcv_nxt, tcb.snd_una, 65535, b"x"))  # in ESTABLISHED: hot
    h.advance(100)
    h.take()
    assert (h.stack.tcp.hot is tcb) == predict
    return h, tcb


def test_match_accepts_the_predicted_segment_and_refuses_each_changed_field():
    h, tcb = _hot()
    frame = bytearray(_segment_from_peer(h, tcb, b"hello world"))
    n = len(frame)
    args = (tcb.th, tcb.r_nxt, tcb.s_una, tcb.s_max)
    assert fastpath.match(frame, n, *args) == 11
    assert _pure.match_py(frame, n, *args) == 11
    # every byte the prediction looks at: changed, the frame takes the full path. (TOS, TTL and
    # the urgent pointer are not looked at; the checksums cover the rest.)
    for i in range(n):
        if i in (6, 7, 8, 9, 10, 11, 15, 22, 52, 53):
            continue
        g = bytearray(frame)
        g[i] ^= 0x40
        assert fastpath.match(g, n, *args) == -1, i
        assert _pure.match_py(g, n, *args) == -1, i
    assert fastpath.match(frame, n - 1, *args) == -1  # shorter than the IPv4 total length
    # no data and no new ACK: a duplicate ACK / window probe is for the full path
    frame = bytearray(_segment_from_peer(h, tcb, b""))
    assert fastpath.match(frame, len(frame), *args) == -1


def test_match_reports_the_acked_bytes_and_refuses_acks_outside_the_flight():
    h, tcb = _hot()
    assert tcb.send(b"a" * 3000, 0, 3000) == 3000
    h.take()
    args = (tcb.th, tcb.r_nxt, tcb.s_una, tcb.s_max)
    for acked in (1, 1460, 2920, 3000):
        f = bytearray(_segment_from_peer(h, tcb, b"", ack_off=acked))
        assert fastpath.match(f, len(f), *args) == acked << 11, acked
        assert _pure.match_py(f, len(f), *args) == acked << 11, acked
        f = bytearray(_segment_from_peer(h, tcb, b"zz", ack_off=acked))
        assert fastpath.match(f, len(f), *args) == 2 | acked << 11
    for off in (3001, -1, 0x7FFFFFFF, 0x80000000, -0x10000):
        f = bytearray(_segment_from_peer(h, tcb, b"zz", ack_off=off))
        assert fastpath.match(f, len(f), *args) == -1, off
        assert _pure.match_py(f, len(f), *args) == -1, off


def test_build_gives_what_the_full_path_builds():
    # The same ACK / data segment from the template and from the field-by-field builder.
    for predict in (True, False):
        h, tcb = _hot(predict=predict)
        log = Log(h)
        assert tcb.send(rel_tests.stream(0, 3000), 0, 3000) == 3000
        h.feed(_segment_from_peer(h, tcb, b"y" * 100))
        tcb.set_nodelay(True)
        if predict:
            fast = list(log.frames)
        else:
            assert log.frames == fast
    assert len(fast) >= 3


def test_build_kernel_agrees_with_its_python_twin():
    h, tcb = _hot()
    f1 = bytearray(1600)
    f2 = bytearray(1600)
    th1 = bytearray(tcb.th)
    th2 = bytearray(tcb.th)
    for plen in (0, 1, 2, 3, 100, 1459, 1460):
        for i in range(plen):
            f1[54 + i] = f2[54 + i] = (i * 31 + plen) & 0xFF
        for seq, ack, flags in ((0, 0, ACK), (-1, 5, ACK | PSH), (0x1FFFFFFF, -7, ACK | FIN),
                                (123456, 0x10000, PSH)):
            fw = flags << 16 | (plen * 37 & 0xFFFF)
            n1 = fastpath.build(f1, th1, seq, ack, fw, plen)
            n2 = _pure.build_py(f2, th2, seq, ack, fw, plen)
            assert n1 == n2 == (54 + plen if plen >= 6 else 60)
            assert f1[:n1] == f2[:n2] and th1 == th2, (plen, seq, ack)


def test_a_corrupted_segment_of_the_hot_connection_is_counted_by_the_full_path():
    h, tcb = _hot()
    frame = bytearray(_segment_from_peer(h, tcb, b"data"))
    frame[55] ^= 1  # payload: the TCP checksum fails
    before = tcb.rx_len
    h.feed(bytes(frame))
    assert tcb.rx_len == before and h.stack.counters.tcp_drop_bad_checksum == 1
    h.feed(_segment_from_peer(h, tcb, b"data"))
    assert tcb.rx_len == before + 4


def test_data_that_does_not_fit_the_ring_takes_the_full_path():
    h, tcb = _hot(rx=1000)
    buf = bytearray(1000)
    tcb.recv_into(buf, 0, 1000)
    h.take()
    h.feed(_segment_from_peer(h, tcb, b"a" * 900))
    h.feed(_segment_from_peer(h, tcb, b"b" * 200))  # 100 bytes fit: the full path trims
    assert tcb.rx_len == 1000 and h.stack.counters.tcp_rx_buffer_full == 1


# -- pure ACKs in a row within one poll: the last of them, counted as all (Stack.input) ------------
_RELATIVE = ("s_una", "s_nxt", "s_max", "r_nxt", "r_wl1", "s_wl2", "s_bhi", "s_blo", "r_bhi",
             "r_blo", "r_wedge")


def _acks_run(frames_of, batched):
    """A connection with 8 full segments out and more queued; frames_of(h, tcb, base) gives the
    peer's frames; batched: all waiting for one poll, else one poll each. Returns the stack's
    counters, the Tcb state, the (seq offset, length) of what was sent after, and the sizes of the
    coalesced groups (tcp_in.fast_acks calls)."""
    h, tcb = connect(tx=16 * MSS)
    base = tcb.snd_una
    data = bytes(range(256)) * 64
    assert tcb.send(data, 0, 8 * MSS) == 8 * MSS
    assert len(h.take()) == 8
    assert tcb.send(data, 0, 4 * MSS + 100) == 4 * MSS + 100  # queued behind: the ACKs send it
    h.take()
    groups = []
    real = stack_mod._fast_acks

    def record(t, r, k):
        groups.append(k)
        return real(t, r, k)

    stack_mod._fast_acks = record
    try:
        frames = frames_of(h, tcb, base)
        if batched:
            h.dev.inbox.extend(frames)
            h.stack.poll()
        else:
            for f in frames:
                h.feed(f)
    finally:
        stack_mod._fast_acks = real
    sent = [((s.tcp.seq - base) & 0xFFFFFFFF, len(s.payload)) for s in h.take()]
    c = h.stack.counters
    counts = (c.eth_rx, c.ip_rx, c.tcp_rx, c.tcp_dupack, c.tcp_fast_retransmit, c.tcp_rx_bytes)
    # absolute sequence numbers: the bases may move at another segment (a held-back ACK moves
    # them with the next segment that takes the full path), so relative ones may differ
    state = [tcb.snd_una, tcb.snd_nxt, tcb.snd_max, tcb.rcv_nxt]
    state += [getattr(tcb, k) for k in _STATE if k not in _RELATIVE]
    return counts, state, sent, groups


def test_a_batch_of_new_acks_is_handled_as_its_last_counted_as_all():
    def frames_of(h, tcb, base):
        return [h.segment(tcb, ACK, tcb.rcv_nxt, sq(base + k * MSS), 65535) for k in range(1, 9)]

    one = _acks_run(frames_of, False)
    batch = _acks_run(frames_of, True)
    # one fast_acks call for the eight; one poll each: one call each (a few take the full path:
    # the bases move every 3 KB here, and the segment after a move goes the full way)
    assert batch[3] == [8] and set(one[3]) == {1}
    assert batch[0] == one[0]  # every frame counted
    assert batch[1] == one[1]  # the same state: s_una, the ring, cwnd (slow start), timers, ...
    assert batch[2] == one[2] and len(batch[2]) == 3  # the same segments go out (the rest of the data)


def test_duplicate_acks_and_data_in_a_batch_are_each_seen():
    def frames_of(h, tcb, base):
        nxt = tcb.rcv_nxt
        return [h.segment(tcb, ACK, nxt, sq(base + MSS), 65535),
                h.segment(tcb, ACK, nxt, sq(base + 2 * MSS), 65535),
                h.segment(tcb, ACK, nxt, sq(base + 2 * MSS), 65535),  # duplicates: the 3rd
                h.segment(tcb, ACK, nxt, sq(base + 2 * MSS), 65535),  # segment was lost
                h.segment(tcb, ACK, nxt, sq(base + 2 * MSS), 65535),
                h.segment(tcb, ACK | PSH, nxt, sq(base + 2 * MSS), 65535, b"reply"),
                h.segment(tcb, ACK, sq(nxt + 5), sq(base + 4 * MSS), 65535)]

    one = _acks_run(frames_of, False)
    batch = _acks_run(frames_of, True)
    assert batch[0] == one[0] and batch[0][3] == 3 and batch[0][4] == 1  # fast retransmit
    assert batch[1] == one[1]
    assert batch[2] == one[2]
    # the first two ACKs as one; the last is not held back: fast recovery runs (the full rules)
    assert batch[3] == [2] and one[3] == [1, 1]
