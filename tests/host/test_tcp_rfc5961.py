# dual: cpython micropython
# Scripted segment-level tests of RFC 5961 (blind in-window attacks) as Linux applies it: a RST
# resets only at exactly RCV.NXT, elsewhere in the window it draws a challenge ACK and outside it
# nothing; a SYN on a synchronized connection draws a challenge ACK; challenge and out-of-window
# ACKs share one per-connection rate limit (invalid_ratelimit_ms, Linux __tcp_oow_rate_limited);
# an ACK older than SND.UNA - MAX.SND.WND is challenged and its data dropped (5.2); an ACK of
# unsent data is answered and dropped (RFC 9293 3.10.7.4). Sequence numbers wrap in every test.
from segment import ACK, FIN, PSH, RST, SYN
from tcpip import errors
from tcpip import tcp

from tcpcase import (IRS, ISS, expect, nothing, pattern, peer, read_all, setup, sq, to)


def challenge(h, seq=0, ack=0, window=2048):
    """A challenge ACK: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, nothing else."""
    return expect(h, ACK, seq, ack, payload=b"", window=window)


def counters(h):
    return h.stack.counters


# -- RST (RFC 5961 3) ----------------------------------------------------------------------------
def test_rst_with_exact_sequence_resets():
    h, tcb = setup()
    peer(h, tcb, 0, 0, flags=RST)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNRESET
    nothing(h)


def test_rst_in_window_but_not_exact_gets_challenge_ack():
    h, tcb = setup()
    peer(h, tcb, 99, 0, flags=RST)
    challenge(h)
    assert tcb.state == tcp.ESTABLISHED
    assert h.stack.counters.tcp_challenge_ack_sent == 1


def test_rst_outside_window_is_dropped_silently():
    h, tcb = setup()
    peer(h, tcb, 99999, 0, flags=RST)
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED


def test_exact_rst_resets_whatever_its_ack_field():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    peer(h, tcb, 0, 12345, flags=RST | ACK)  # SEG.ACK is not checked for a RST (RFC 5961 3.2)
    nothing(h)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNRESET
    assert counters(h).tcp_rst_received == 1 and h.stack.tcp.tcbs == []
    to(h, 1000)
    nothing(h)


def test_rst_one_past_rcv_nxt_gets_a_challenge_ack():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    peer(h, tcb, 0, 0, payload=b"12345")  # RCV.NXT moves to 5; delayed ACK pending
    peer(h, tcb, 6, 0, flags=RST)
    challenge(h, 3, 5, window=2048 - 5)  # current SND.NXT / RCV.NXT / window; carries the owed ACK
    assert tcb.state == tcp.ESTABLISHED and tcb.rx_len == 5
    assert counters(h).tcp_challenge_ack_sent == 1 and counters(h).tcp_rst_received == 0


def test_rst_at_the_last_byte_of_the_window_gets_a_challenge_ack():
    h, tcb = setup()
    peer(h, tcb, 2047, 0, flags=RST)  # RCV.NXT + RCV.WND - 1
    challenge(h)
    assert tcb.state == tcp.ESTABLISHED


def test_rst_at_the_right_edge_of_the_window_is_dropped_silently():
    h, tcb = setup()
    peer(h, tcb, 2048, 0, flags=RST)  # RCV.NXT + RCV.WND: outside
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED and counters(h).tcp_rst_blind_dropped == 1


def test_rst_below_rcv_nxt_is_dropped_silently():
    h, tcb = setup()
    peer(h, tcb, -1, 0, flags=RST)
    peer(h, tcb, -70000, 0, flags=RST)
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED and counters(h).tcp_rst_blind_dropped == 2


def test_the_rst_window_is_the_free_receive_space():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=pattern(1000))  # unread: the window shrinks to 1048
    peer(h, tcb, 1000 + 1048, 0, flags=RST)
    nothing(h)
    peer(h, tcb, 1000 + 1047, 0, flags=RST)
    challenge(h, 0, 1000, window=1048)


def test_rst_with_a_zero_window_must_be_exact():
    h, tcb = setup(rx_buffer=100)
    peer(h, tcb, 0, 0, payload=pattern(100))
    peer(h, tcb, 101, 0, flags=RST)  # no window: nothing is "in the window"
    nothing(h)
    assert tcb.state == tcp.ESTABLISHED
    peer(h, tcb, 100, 0, flags=RST)
    nothing(h)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNRESET


def test_challenge_ack_then_the_peers_exact_rst_resets():
    h, tcb = setup()
    peer(h, tcb, 300, 0, flags=RST)  # a real peer's RST that raced with our data, say
    ch = challenge(h)
    # the peer answers the challenge with a RST at the challenge's ACK number (RFC 5961 3.2)
    h.feed(h.segment(tcb, RST, ch.tcp.ack, 0))
    nothing(h)
    assert tcb.state == tcp.CLOSED and tcb.error == errors.ECONNRESET


def test_rst_in_window_in_fin_wait_2_gets_a_challenge_ack():
    h, tcb = setup()
    tcb.shutdown_write()
    expect(h, ACK | FIN, 0, 0)
    peer(h, tcb, 0, 1)
    assert tcb.state == tcp.FIN_WAIT_2
    peer(h, tcb, 10, 1, flags=RST)
    challenge(h, 1, 0)
    assert tcb.state == tcp.FIN_WAIT_2


# -- SYN (RFC 5961 4) ------------------------------------------------------------------------------
def test_syn_on_established_connection_gets_challenge_ack():
    h, tcb = setup()
    peer(h, tcb, 0, 0, flags=SYN)
    challenge(h)
    assert tcb.state == tcp.ESTABLISHED


def test_syn_in_the_window_gets_a_challenge_ack_and_changes_nothing():
    h, tcb = setup(delayed_ack_ms=0)
    peer(h, tcb, 10, 0, flags=SYN)
    challenge(h)
    assert tcb.state == tcp.ESTABLISHED and counters(h).tcp_challenge_ack_sent == 1
    peer(h, tcb, 0, 0, payload=b"ok")  # the connection goes on
    expect(h, ACK, 0, 2)
    assert read_all(tcb) == b"ok"


def test_data_on_a_syn_is_not_accepted():
    h, tcb = setup()
    peer(h, tcb, 0, 0, payload=b"evil", flags=SYN | ACK)
    challenge(h)
    assert tcb.rx_len == 0 and tcb.rcv_nxt == sq(IRS + 1)


def test_syn_outside_the_window_gets_a_rate_limited_challenge_ack():
    h, tcb = setup()
    peer(h, tcb, 100000, 0, flags=SYN)
    # RFC 5961 4.2: "irrespective of the sequence number" -> challenge ACK, throttled (section 7;
    # Linux tcp_validate_incoming: an out-of-window SYN goes to syn_challenge)
    challenge(h)
    assert counters(h).tcp_challenge_ack_sent == 1
    to(h, 100)
    peer(h, tcb, 200000, 0, flags=SYN)
    nothing(h)
    assert counters(h).tcp_ack_ratelimited == 1


# -- the per-connection rate limit ----------------------------------------------------------------
def test_challenge_acks_are_rate_limited_per_connection():
    h, tcb = setup()  # invalid_ratelimit_ms 500 (Linux tcp_invalid_ratelimit)
    peer(h, tcb, 5, 0, flags=RST)
    challenge(h)
    to(h, 499)
    peer(h, tcb, 6, 0, flags=RST)
    nothing(h)
    assert counters(h).tcp_ack_ratelimited == 1 and counters(h).tcp_challenge_ack_sent == 1
    to(h, 500)  # 500 ms after the last one SENT (suppressed ones do not count)
    peer(h, tcb, 7, 0, flags=RST)
    challenge(h)
    to(h, 999)
    peer(h, tcb, 8, 0, flags=RST)
    nothing(h)
    to(h, 1000)
    peer(h, tcb, 9, 0, flags=RST)
    challenge(h)
    assert counters(h).tcp_challenge_ack_sent == 3 and counters(h).tcp_ack_ratelimited == 2
    assert tcb.state == tcp.ESTABLISHED


def test_rate_limit_interval_is_configurable():
    h, tcb = setup(invalid_ratelimit_ms=1000)
    peer(h, tcb, 5, 0, flags=RST)
    challenge(h)
    to(h, 999)
    peer(h, tcb, 5, 0, flags=RST)
    nothing(h)
    to(h, 1000)
    peer(h, tcb, 5, 0, flags=RST)
    challenge(h)


def test_rate_limit_is_shared_by_challenge_and_out_of_window_acks():
    h, tcb = setup()
    peer(h, tcb, 5, 0, flags=RST)
    challenge(h)
    to(h, 100)
    peer(h, tcb, 5000, 0)  # a pure ACK outside the window: normally answered, but limited
    nothing(h)
    assert counters(h).tcp_drop_out_of_window == 1 and counters(h).tcp_ack_ratelimited == 1
    to(h, 500)
    peer(h, tcb, 5000, 0)
    challenge(h)


def test_out_of_window_data_is_acked_every_time():
    h, tcb = setup()
    for t in (0, 1, 2):
        to(h, t)
        peer(h, tcb, 5000, 0, payload=b"x")  # data: no ACK loop possible, no limit (Linux)
        challenge(h)
    assert counters(h).tcp_ack_ratelimited == 0 and tcb.rx_len == 0


def test_keepalive_probe_from_the_peer_is_answered_every_time():
    h, tcb = setup()
    for t in (0, 100, 200):
        to(h, t)
        peer(h, tcb, -1, 0)  # SEG.SEQ = RCV.NXT - 1, no data: a keep-alive / window probe
        challenge(h)
    assert counters(h).tcp_ack_ratelimited == 0


# -- the ACK field (RFC 5961 5, RFC 9293 3.10.7.4 fifth) -----------------------------------------
def three_kb_sent_and_acked():
    """The peer's window (and so MAX.SND.WND) is 1000; 3000 bytes went and were ACKed."""
    h, tcb = setup(window=1000, tx_buffer=4000)
    data = pattern(3000)
    for i in range(3):
        assert tcb.send(data, 1000 * i, 1000) == 1000
        expect(h, ACK | PSH, 1000 * i, 0, payload=data[1000 * i:1000 * (i + 1)])
        peer(h, tcb, 0, 1000 * (i + 1), window=1000)
    assert tcb.snd_una == sq(ISS + 1 + 3000) and tcb.max_snd_wnd == 1000
    return h, tcb


def test_ack_older_than_snd_una_minus_max_snd_wnd_is_challenged_and_its_data_dropped():
    h, tcb = three_kb_sent_and_acked()
    peer(h, tcb, 0, 1999, payload=b"evil", window=1000)  # 1999 < 3000 - 1000
    challenge(h, 3000, 0)
    assert tcb.rx_len == 0 and tcb.rcv_nxt == sq(IRS + 1)  # blind data injection refused
    assert counters(h).tcp_ack_too_old == 1 and counters(h).tcp_challenge_ack_sent == 1
    to(h, 100)
    peer(h, tcb, 0, 1500, payload=b"evil", window=1000)
    nothing(h)  # the challenge ACKs share the rate limit
    assert tcb.rx_len == 0 and counters(h).tcp_ack_too_old == 2


def test_ack_at_snd_una_minus_max_snd_wnd_is_acceptable_with_its_data():
    h, tcb = three_kb_sent_and_acked()
    peer(h, tcb, 0, 2000, payload=b"good", window=1000)  # exactly SND.UNA - MAX.SND.WND
    nothing(h)  # an old (duplicate) ACK: ignored, the data is accepted (delayed ACK)
    assert tcb.rx_len == 4 and tcb.snd_una == sq(ISS + 1 + 3000)
    to(h, 40)
    challenge(h, 3000, 4, window=2044)
    assert read_all(tcb) == b"good" and counters(h).tcp_ack_too_old == 0


def test_ack_for_unsent_data_is_answered_and_dropped():
    h, tcb = setup()
    peer(h, tcb, 0, 99, payload=b"zz")
    expect(h, ACK, 0, 0)
    assert tcb.rx_len == 0
    assert h.stack.counters.tcp_ack_unsent_data == 1


def test_ack_of_unsent_data_is_answered_rate_limited_and_dropped():
    h, tcb = setup()
    tcb.send(b"abc", 0, 3)
    expect(h, ACK | PSH, 0, 0, payload=b"abc")
    peer(h, tcb, 0, 4, payload=b"zz")  # one beyond SND.MAX
    challenge(h, 3, 0)
    assert tcb.rx_len == 0 and tcb.snd_una == sq(ISS + 1)
    to(h, 100)
    peer(h, tcb, 0, 4, payload=b"zz")
    nothing(h)
    assert counters(h).tcp_ack_unsent_data == 2 and counters(h).tcp_ack_ratelimited == 1
    peer(h, tcb, 0, 3, payload=b"zz")  # SEG.ACK = SND.MAX: fine, data and all
    assert tcb.snd_una == sq(ISS + 1 + 3) and tcb.tx_len == 0 and tcb.rx_len == 2
