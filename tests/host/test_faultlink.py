"""host_tools.faultlink.FaultLink: each fault kind with a fixed seed, counters, direction filter,
delay/rate/jitter on a ManualClock, reproducibility, wait() returning when a delayed frame is due,
the stack's checksums catching every corrupted frame, and the frame bridge relaying delayed frames
on time (UDP on 127.0.0.1 only). CPython only (host tooling)."""
import os
import select
import socket
import time

import pytest

from host_tools.bridge import FrameBridge
from host_tools.faultlink import FaultLink
from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, ACK, eth, ip_packet, tcp_segment
from listlink import ListLink  # host_tools/mp, on the path once segment is imported
from manualclock import ManualClock
from tcpip.clock import Clock
from tcpip.stack import Stack

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806


class Wire(ListLink):
    """A device over two lists, recording the clock (ms) at which each frame was sent.
    No wait(): FaultLink.wait then sleeps on the clock (ManualClock.sleep_ms advances it)."""

    def __init__(self, clock, incoming=()):
        ListLink.__init__(self)
        self.clock = clock
        self.mac = OUR_MAC
        self.mtu = 1500
        self.inbox = list(incoming)
        self.sent_at = []

    def send(self, buf, n):
        ListLink.send(self, buf, n)
        self.sent_at.append(self.clock.ticks_ms())


def frame(i, size=100, ethertype=ETHERTYPE_IPV4):
    """A recognisable frame: number i in its first payload bytes."""
    body = bytes([(i >> 8) & 0xFF, i & 0xFF]) + bytes((i + k) & 0xFF for k in range(size - 16))
    return eth(OUR_MAC, PEER_MAC, ethertype, body)


def number(f):
    return f[14] << 8 | f[15]


def send_all(link, frames):
    for f in frames:
        b = bytearray(f) + b"junk"  # send(buf, n) takes only the first n bytes
        link.send(b, len(f))


def receive_all(link, limit=100000):
    buf = bytearray(2048)
    out = []
    for _ in range(limit):
        n = link.recv_into(buf)
        if not n:
            return out
        out.append(bytes(buf[:n]))
    raise AssertionError("recv_into never ran dry")


def make(clock=None, incoming=(), seed=1, **faults):
    clock = clock if clock is not None else ManualClock()
    wire = Wire(clock, incoming)
    return FaultLink(wire, seed, clock=clock, **faults), wire


# -- pass-through ----------------------------------------------------------------------------------
def test_no_faults_passes_every_frame_unchanged_both_ways():
    frames = [frame(i) for i in range(50)]
    link, wire = make(incoming=frames)
    send_all(link, frames)
    assert wire.sent == frames
    assert receive_all(link) == frames
    c = link.counters()
    assert c["frames"] == 100 and c["passed"] == 100
    assert c["dropped"] == c["corrupted"] == c["reordered"] == c["duplicated"] == c["delayed"] == 0
    assert link.mac == OUR_MAC and link.mtu == 1500


# -- each fault ------------------------------------------------------------------------------------
def test_drop_loses_about_the_chance_and_counts_exactly():
    frames = [frame(i) for i in range(2000)]
    link, wire = make(drop=0.25, seed=7)
    send_all(link, frames)
    kept = [number(f) for f in wire.sent]
    assert kept == sorted(kept)  # drop never reorders
    dropped = 2000 - len(kept)
    assert link.tx.counters["dropped"] == dropped
    assert 400 <= dropped <= 600  # 500 expected; binomial sd ~19
    assert link.tx.counters["passed"] == len(kept) and link.tx.counters["frames"] == 2000
    assert all(f == frames[number(f)] for f in wire.sent)


def test_duplicate_sends_a_second_identical_copy_right_after():
    frames = [frame(i) for i in range(20)]
    link, wire = make(duplicate=1.0)
    send_all(link, frames)
    assert wire.sent == [f for f in frames for _ in (0, 1)]
    assert link.tx.counters["duplicated"] == 20 and link.tx.counters["passed"] == 40


def test_reorder_swaps_a_held_frame_with_the_next_one():
    frames = [frame(i) for i in range(6)]
    link, wire = make(reorder=1.0, incoming=frames)
    # every frame is chosen; one is held at a time, the next passes it
    assert [number(f) for f in receive_all(link)] == [1, 0, 3, 2, 5, 4]
    assert link.rx.counters["reordered"] == 3
    send_all(link, frames[:5])
    assert [number(f) for f in wire.sent] == [1, 0, 3, 2]  # frame 4 is still held
    assert link.tx.counters["reordered"] == 2  # frame 4 is not reordered (yet)


def test_reordered_frame_without_a_successor_leaves_after_hold_ms():
    clock = ManualClock(1000)
    link, wire = make(clock, reorder=1.0, hold_ms=10)
    send_all(link, [frame(0)])
    assert wire.sent == []
    clock.advance(9)
    link.service()
    assert wire.sent == []
    clock.advance(1)
    link.service()
    assert [number(f) for f in wire.sent] == [0] and wire.sent_at == [1010]
    # nothing overtook it: it left in order, 10 ms late -- delayed, not reordered
    assert link.tx.counters["reordered"] == 0 and link.tx.counters["delayed"] == 1


def test_corrupt_flips_one_bit_after_the_ethernet_header_of_ipv4_frames_only():
    frames = [frame(i, size=60 + i) for i in range(200)]
    arp = [frame(1000 + i, ethertype=ETHERTYPE_ARP) for i in range(20)]
    link, wire = make(corrupt=1.0, seed=3)
    send_all(link, frames + arp)
    assert wire.sent[200:] == arp  # no checksum would catch it: ARP is left alone
    positions = set()
    for sent, orig in zip(wire.sent, frames):
        assert len(sent) == len(orig) and sent[:14] == orig[:14]
        diff = [(k, sent[k] ^ orig[k]) for k in range(len(orig)) if sent[k] != orig[k]]
        assert len(diff) == 1, diff
        k, x = diff[0]
        assert k >= 14 and x in (1, 2, 4, 8, 16, 32, 64, 128)
        positions.add(k)
    assert len(positions) > 30  # random bytes, not one fixed place
    assert link.tx.counters["corrupted"] == 200


def test_stack_checksums_catch_every_corrupted_segment():
    """A SYN-ACK for no connection gets a RST; corrupted, it must be dropped (no RST, no crash)."""
    clock = ManualClock()
    segments = []
    for i in range(150):
        seg = tcp_segment(PEER_IP, OUR_IP, 80, 40000 + i, 1000 + i, 5000, ACK, payload=b"x" * (i % 40))
        segments.append(eth(OUR_MAC, PEER_MAC, ETHERTYPE_IPV4, ip_packet(PEER_IP, OUR_IP, 6, seg)))
    link, wire = make(clock, corrupt=1.0, seed=11, direction="rx", incoming=segments)
    stack = Stack(link, clock, addr="192.0.2.2/24")
    for _ in range(40):
        stack.poll()
    c = stack.counters.snapshot()
    caught = sum(v for k, v in c.items() if k.startswith("ip_drop_") or k.startswith("tcp_drop_"))
    assert link.rx.counters["corrupted"] == 150
    assert c["eth_rx"] == 150 and caught == 150, c
    assert c["ip_drop_bad_checksum"] > 0 and c["tcp_drop_bad_checksum"] > 0, c
    assert c["tcp_no_socket_rst_sent"] == 0 and wire.sent == []
    # the same segments uncorrupted are answered: the drops above were the corruption's doing
    link2, wire2 = make(clock, direction="rx", incoming=segments[:5])
    stack2 = Stack(link2, clock, addr="192.0.2.2/24")
    for _ in range(5):
        stack2.poll()
    assert stack2.counters.tcp_no_socket_rst_sent == 5


# -- direction filter ------------------------------------------------------------------------------
@pytest.mark.parametrize("direction,rx_kept,tx_kept", [("rx", 0, 10), ("tx", 10, 0), ("both", 0, 0)])
def test_direction_filter(direction, rx_kept, tx_kept):
    frames = [frame(i) for i in range(10)]
    link, wire = make(drop=1.0, direction=direction, incoming=frames)
    send_all(link, frames)
    assert len(receive_all(link)) == rx_kept
    assert len(wire.sent) == tx_kept
    assert link.rx.counters["dropped"] == 10 - rx_kept and link.tx.counters["dropped"] == 10 - tx_kept


# -- time: delay, rate, jitter -----------------------------------------------------------------------
def test_delay_holds_frames_on_the_manual_clock():
    clock = ManualClock(500)
    link, wire = make(clock, delay_ms=30, incoming=[frame(0)])
    send_all(link, [frame(1)])
    buf = bytearray(2048)
    assert link.recv_into(buf) == 0 and wire.sent == []
    clock.advance(29)
    assert link.recv_into(buf) == 0 and wire.sent == []
    assert link.next_event_ms() == 1
    clock.advance(1)
    assert link.recv_into(buf) == 100 and number(buf) == 0
    assert [number(f) for f in wire.sent] == [1] and wire.sent_at == [530]
    assert link.counters()["delayed"] == 2


def test_rate_limit_spaces_frames_by_their_serialisation_time():
    clock = ManualClock()
    link, wire = make(clock, rate_bps=80000, direction="tx")  # 1000 bytes = 8000 bits = 100 ms
    send_all(link, [frame(i, size=1000) for i in range(3)])
    for _ in range(40):
        clock.advance(10)
        link.service()
    assert wire.sent_at == [100, 200, 300]


def test_jitter_stays_within_bounds_and_never_reorders():
    clock = ManualClock()
    link, wire = make(clock, delay_ms=50, jitter_ms=20, direction="tx", seed=5)
    for i in range(100):
        send_all(link, [frame(i)])
        clock.advance(1)
        link.service()
    for _ in range(100):
        clock.advance(1)
        link.service()
    assert [number(f) for f in wire.sent] == list(range(100))
    lateness = [at - i for i, at in enumerate(wire.sent_at)]
    assert all(30 <= d <= 70 for d in lateness), lateness
    assert len(set(lateness)) > 5  # it does vary


def test_tx_queue_is_bounded_and_counts_overflow():
    clock = ManualClock()
    link, wire = make(clock, delay_ms=100, queue_limit=8, direction="tx")
    send_all(link, [frame(i) for i in range(12)])
    assert link.tx.counters["overflow"] == 4 and len(link.tx.queue) == 8
    clock.advance(100)
    link.service()
    assert [number(f) for f in wire.sent] == list(range(8))


# -- reproducibility -------------------------------------------------------------------------------
def run_mixed(seed):
    clock = ManualClock()
    frames = [frame(i) for i in range(300)]
    link, wire = make(clock, seed=seed, drop=0.1, duplicate=0.1, reorder=0.1, corrupt=0.1,
                      delay_ms=5, jitter_ms=3, incoming=list(frames))
    got = []
    for f in frames:
        send_all(link, [f])
        got.extend(receive_all(link))
        clock.advance(1)
    for _ in range(50):
        clock.advance(1)
        link.service()
        got.extend(receive_all(link))
    return wire.sent, wire.sent_at, got, link.counters()


def test_same_seed_same_run_other_seed_other_run():
    a = run_mixed(42)
    assert a == run_mixed(42)
    b = run_mixed(43)
    assert a[0] != b[0] and a[2] != b[2]
    counters = a[3]
    for name in ("dropped", "duplicated", "reordered", "corrupted", "delayed"):
        assert counters["rx"][name] > 0 and counters["tx"][name] > 0, counters
    # directions draw from their own generators: rx decisions differ from tx decisions
    assert counters["rx"] != counters["tx"]


def test_decisions_do_not_depend_on_timing():
    """The n-th frame of a direction meets the same fate however the calls interleave."""
    frames = [frame(i) for i in range(200)]
    link1, wire1 = make(seed=9, drop=0.3, direction="tx")
    send_all(link1, frames)
    clock = ManualClock()
    link2, wire2 = make(clock, seed=9, drop=0.3, direction="tx")
    for f in frames:
        receive_all(link2)
        clock.advance(3)
        send_all(link2, [f])
    assert wire1.sent == wire2.sent


def _origin(f):
    """Which frame(i) f came from, also after one flipped bit (three bytes vote)."""
    votes = [f[16], (f[17] - 1) & 0xFF, (f[18] - 2) & 0xFF]
    return max(set(votes), key=votes.count)


def _fates(gap_ms, mixed_types):
    """Per frame number: (copies sent, copies corrupted) on tx, frames sent gap_ms apart."""
    clock = ManualClock()
    frames = [frame(i, ethertype=ETHERTYPE_ARP if mixed_types and i % 3 == 0 else ETHERTYPE_IPV4)
              for i in range(200)]
    link, wire = make(clock, seed=21, drop=0.1, duplicate=0.2, reorder=0.3, corrupt=0.2,
                      delay_ms=5, jitter_ms=3, direction="tx")
    for f in frames:
        send_all(link, [f])
        clock.advance(gap_ms)
        link.service()
    for _ in range(100):
        clock.advance(1)
        link.service()
    fates = {}
    for f in wire.sent:
        i = _origin(f)
        copies, bad = fates.get(i, (0, 0))
        fates[i] = (copies + 1, bad + (f != frames[i]))
    return fates, link.counters()


def test_each_frames_fate_does_not_depend_on_hold_timeouts_or_jitter_draws():
    """Held frames released by their successor (1 ms apart) or by the hold timeout (20 ms apart):
    the n-th frame is dropped, duplicated and corrupted alike; the random numbers drawn per frame
    do not depend on when a held frame leaves, nor on the frame's type."""
    for mixed in (False, True):
        quick, cq = _fates(1, mixed)
        slow, cs = _fates(20, mixed)
        assert quick == slow
        for name in ("frames", "dropped", "duplicated", "corrupted", "passed"):
            assert cq[name] == cs[name], name
        assert cq["duplicated"] > 0 and cq["corrupted"] > 0 and cq["dropped"] > 0


# -- wait() ------------------------------------------------------------------------------------------
def test_wait_returns_when_a_delayed_rx_frame_becomes_due():
    clock = ManualClock()
    link, wire = make(clock, delay_ms=30, incoming=[frame(7)])
    assert link.recv_into(bytearray(2048)) == 0  # pulled in, due at 30 ms
    assert link.wait(1000) is True
    assert clock.ticks_ms() == 30
    assert number(receive_all(link)[0]) == 7


def test_wait_sends_due_tx_frames_and_times_out_without_rx():
    clock = ManualClock()
    link, wire = make(clock, delay_ms=30)
    send_all(link, [frame(1)])
    assert link.wait(100) is False
    assert clock.ticks_ms() == 100
    assert wire.sent_at == [30]


class PipeDevice(ListLink):
    """A device whose wait() really blocks (select on a pipe) and whose frames come from a list;
    sent holds (time.monotonic(), frame) pairs."""

    def __init__(self):
        ListLink.__init__(self)
        self.mac = OUR_MAC
        self.mtu = 1500
        self.r, self.w = os.pipe()

    def push(self, f):
        self.inbox.append(f)
        os.write(self.w, b"x")

    def recv_into(self, buf):
        if not self.inbox:
            return 0
        os.read(self.r, 1)
        return ListLink.recv_into(self, buf)

    def send(self, buf, n):
        self.sent.append((time.monotonic(), bytes(buf[:n])))

    def wait(self, ms):
        return bool(select.select([self.r], [], [], ms / 1000)[0])

    def fileno(self):
        return self.r

    def close(self):
        os.close(self.r)
        os.close(self.w)


def test_wait_with_real_clock_and_device_returns_early_for_a_delayed_frame():
    dev = PipeDevice()
    try:
        link = FaultLink(dev, 1, delay_ms=50, clock=Clock())
        dev.push(frame(3))
        t0 = time.monotonic()
        assert link.wait(5000) is True
        waited = time.monotonic() - t0
        assert 0.045 <= waited < 1.0, waited  # the device was readable at once; the delay held it
        assert number(receive_all(link)[0]) == 3
        t0 = time.monotonic()
        assert link.wait(100) is False  # nothing more: the full timeout, not an early return
        assert 0.09 <= time.monotonic() - t0 < 1.0
    finally:
        dev.close()


def test_bridge_with_faults_relays_delayed_frames_on_time_both_ways():
    """FrameBridge(faults=...) wakes for a frame's due time, not only for its poll interval."""
    dev = PipeDevice()
    bridge = FrameBridge(dev, faults={"seed": 1, "delay_ms": 30})
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2)
        slot = bridge.slot
        peer.sendto(b"HELLO" + bytes([slot >> 8, slot & 0xFF]), ("127.0.0.1", bridge.port))
        bridge.step(0)
        assert peer.recv(65536)[:5] == b"READY"
        # TAP -> UDP: due 30 ms after it was read, relayed then although the step may wait 1 s
        dev.push(frame(5))
        t0 = time.monotonic()
        got = None
        peer.setblocking(False)
        for _ in range(50):
            bridge.step(1000)
            try:
                got = peer.recv(65536)
                break
            except BlockingIOError:
                continue
        waited = time.monotonic() - t0
        assert got is not None and number(got) == 5 and len(got) == slot
        assert 0.025 <= waited < 0.5, waited
        # UDP -> TAP: the frame reaches the device 30 ms after the bridge took it
        f = frame(6)
        t0 = time.monotonic()
        peer.sendto(f, ("127.0.0.1", bridge.port))
        for _ in range(50):
            bridge.step(1000)
            if dev.sent:
                break
        assert [x for _, x in dev.sent] == [f]
        assert 0.025 <= dev.sent[0][0] - t0 < 0.5
        c = bridge.link.counters()
        assert c["rx"]["delayed"] == 1 and c["tx"]["delayed"] == 1
        assert bridge.counters["to_peer"] == 1 and bridge.counters["from_peer"] == 1
    finally:
        peer.close()
        bridge.close()
        dev.close()


def test_wait_does_not_spin_on_a_device_wait_that_passes_no_time():
    class Stuck(Wire):
        def wait(self, ms):
            return False

    clock = ManualClock()
    link = FaultLink(Stuck(clock), 1, delay_ms=10, clock=clock)
    assert link.wait(1000) is False


def test_wait_with_a_full_rx_queue_sleeps_instead_of_asking_the_readable_device():
    class Readable(Wire):
        calls = 0

        def wait(self, ms):
            Readable.calls += 1
            return True  # frames are still waiting in the device: it is always readable

    clock = ManualClock()
    dev = Readable(clock, [frame(i) for i in range(5)])
    link = FaultLink(dev, 1, delay_ms=30, queue_limit=2, clock=clock)
    assert link.recv_into(bytearray(2048)) == 0  # two frames pulled, due at 30 ms; three wait
    assert len(dev.inbox) == 3
    assert link.wait(1000) is True and clock.ticks_ms() == 30
    assert Readable.calls == 0


def test_bad_settings_are_refused():
    for kw in ({"drop": 1.5}, {"corrupt": -0.1}, {"direction": "up"}, {"delay_ms": -1},
               {"queue_limit": 0}):
        with pytest.raises(ValueError):
            FaultLink(Wire(ManualClock()), 1, **kw)
    assert FaultLink(Wire(ManualClock()), 3, drop=0.5).settings()["seed"] == 3



class FailingWire(Wire):
    """A device whose send fails (a TAP that is down: write() gives EIO) until fixed."""

    def __init__(self, clock):
        Wire.__init__(self, clock)
        self.broken = True

    def send(self, buf, n):
        if self.broken:
            raise OSError(5, "Input/output error")
        Wire.send(self, buf, n)


def test_a_failing_device_send_of_a_delayed_frame_is_counted_not_raised():
    """A delayed frame goes out on a later call (service() in the bridge's relay thread, or another
    frame's send): the device's OSError then has no caller to go to. It is counted and the frame
    lost, and the link goes on once the device works again."""
    clock = ManualClock()
    wire = FailingWire(clock)
    link = FaultLink(wire, 1, delay_ms=10, direction="tx", clock=clock)
    send_all(link, [frame(0), frame(1)])
    clock.advance(10)
    link.service()  # must not raise
    assert wire.sent == [] and link.tx.counters["send_errors"] == 2
    assert link.counters()["send_errors"] == 2
    wire.broken = False
    send_all(link, [frame(2)])
    clock.advance(10)
    link.service()
    assert [number(f) for f in wire.sent] == [2]
    assert link.tx.counters["passed"] == 1


def test_rx_frame_longer_than_the_buffer_is_cut_like_the_tap_cuts_it():
    """TapDevice (readv) cuts a frame to the buffer it reads into; through a faulted rx direction a
    longer frame must not grow a bytearray buffer nor raise on a memoryview."""
    link, wire = make(incoming=[frame(1, size=300), frame(2, size=300)], direction="rx")
    buf = bytearray(100)
    assert link.recv_into(buf) == 100 and len(buf) == 100 and bytes(buf) == frame(1, size=300)[:100]
    mv = memoryview(bytearray(120))
    assert link.recv_into(mv) == 120 and bytes(mv) == frame(2, size=300)[:120]
