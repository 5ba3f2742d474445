"""FaultLink: a seeded fault injector around any device with the NIC contract (smoltcp's FaultInjector).

    link = FaultLink(TapDevice("tap0"), seed=7, drop=0.05, reorder=0.02, duplicate=0.01)
    stack = Stack(link, addr="192.0.2.2/24")

Directions are named from the stack's side: "rx" is what the wrapped device delivers to the stack
(recv_into), "tx" what the stack sends (send). `direction` ("both", "rx" or "tx") says which of them
are faulted; the other passes straight through. Each faulted direction has its own random.Random,
seeded from `seed` and the direction, and draws eight numbers per frame whatever the frame and the
timing, so a given seed drops, corrupts (the same bit) and duplicates the n-th frame of a direction,
and gives it the same jitter, in every run. Only reordering can differ: a frame chosen for it is
held only if the hold slot is free, and a held frame leaves the slot when its successor comes or,
timing dependent, after `hold_ms`.

Per frame, in this order:
  drop       the frame vanishes (probability `drop`)
  corrupt    one bit flips in a random byte after the 14-byte Ethernet header, in IPv4 frames only
             (ARP has no checksum to catch it; IPv4 and TCP checksums must)
  reorder    the frame is held back and released right after the next frame of that direction
             (counted as reordered then), or after `hold_ms` if none comes (counted as delayed)
  duplicate  a second copy follows the frame
  rate       `rate_bps` > 0: frames leave one after another at that bit rate (serialisation delay)
  delay      each frame is held `delay_ms` +- up to `jitter_ms` (uniform); jitter never reorders:
             a frame never leaves before the one ahead of it
Each direction's queue holds at most `queue_limit` frames: on tx the excess is dropped (counted as
overflow), on rx it waits in the wrapped device. A queued tx frame whose device send() fails when it
falls due is lost and counted as send_errors (its send() call returned long before).

Time comes from `clock` (tcpip.clock.Clock by default; ManualClock in tests): delayed frames leave
when the clock says so, on any call (recv_into, send, wait, service). wait(ms) returns True as soon as
a frame is deliverable -- also one that was only waiting for its delay -- and sends due tx frames
while it waits. Without a device wait() it sleeps with clock.sleep_ms (ManualClock: advances).
Counters per direction (link.rx.counters, link.tx.counters) and summed (link.counters()).
CPython host tooling (it copies each frame); not for the MicroPython hot path.
"""
import random

from tcpip.clock import Clock, ticks_diff

ETH_HEADER_LEN = 14
ETHERTYPE_IPV4 = 0x0800
DIRECTIONS = ("both", "rx", "tx")
COUNTER_NAMES = ("frames", "passed", "dropped", "corrupted", "reordered", "duplicated", "delayed",
                 "overflow", "send_errors")
DEFAULT_QUEUE_LIMIT = 1000   # frames per direction (netem's default limit)
DEFAULT_HOLD_MS = 10         # a reordered frame waits at most this long for a successor
PULL_BUFFER = 65536
MAX_WAIT_ROUNDS = 10000      # bound on wait()'s inner loop


def _check_chance(name, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError("%s must be a probability 0..1, not %r" % (name, p))
    return float(p)


class _Pipe:
    """One direction: decisions, the hold slot for reordering, and a FIFO of (due_us, frame)."""

    def __init__(self, name, seed, faulted, link):
        self.name = name
        self.faulted = faulted
        self.link = link
        self.rng = random.Random("%s/%d" % (name, seed))
        self.queue = []       # [(due_us, bytes)], due_us non-decreasing
        self.held = None      # a frame held back for reordering:
        #                       (since_us, bytes, jitter_us, its duplicate's jitter_us or None)
        self.link_free_us = 0  # rate limit: when the line is free again
        self.last_due_us = 0
        self.counters = dict((n, 0) for n in COUNTER_NAMES)

    def admit(self, frame, now):
        """A frame enters this direction at now (us); returns False if the queue was full."""
        link = self.link
        c = self.counters
        if len(self.queue) >= link.queue_limit:
            c["overflow"] += 1
            return False
        c["frames"] += 1
        # Every frame draws the same eight numbers, whatever its type and whatever the timing, so the
        # n-th frame's decisions never depend on earlier frames' types or on when held frames left.
        rng = self.rng
        r_drop = rng.random()
        r_corrupt = rng.random()
        r_reorder = rng.random()
        r_dup = rng.random()
        r_pos = rng.random()
        r_bit = rng.random()
        jit = self._jitter(rng.random())
        jit_dup = self._jitter(rng.random())
        if r_drop < link.drop:
            c["dropped"] += 1
            return True
        if r_corrupt < link.corrupt and len(frame) > ETH_HEADER_LEN \
                and (frame[12] << 8 | frame[13]) == ETHERTYPE_IPV4:
            frame = bytearray(frame)
            i = ETH_HEADER_LEN + int(r_pos * (len(frame) - ETH_HEADER_LEN))
            frame[i] ^= 1 << int(r_bit * 8)
            frame = bytes(frame)
            c["corrupted"] += 1
        dup = r_dup < link.duplicate
        if dup:
            c["duplicated"] += 1
        else:
            jit_dup = None
        if r_reorder < link.reorder and self.held is None:
            self.held = (now, frame, jit, jit_dup)  # a duplicate stays with its frame
            return True
        self._enqueue(frame, now, jit, jit_dup)
        if self.held is not None:
            held = self.held
            self.held = None
            c["reordered"] += 1  # counted once overtaken (a hold that times out is only a delay)
            self._enqueue(held[1], now, held[2], held[3])  # overtaken by the frame just queued
        return True

    def _jitter(self, r):
        """A uniform r in [0, 1) -> microseconds in [-jitter_us, jitter_us]."""
        j = self.link.jitter_us
        return int(r * (2 * j + 1)) - j if j else 0

    def _enqueue(self, frame, now, jitter_us, dup_jitter_us=None, waited=False):
        """Queue frame (and a duplicate right after it when dup_jitter_us is not None); waited:
        it was held back hold_ms (counted as delayed)."""
        self._enqueue_one(frame, now, jitter_us, waited)
        if dup_jitter_us is not None:
            self._enqueue_one(frame, now, dup_jitter_us, waited)

    def _enqueue_one(self, frame, now, jitter_us, waited):
        link = self.link
        due = now
        if link.rate_bps:
            start = self.link_free_us if self.link_free_us > now else now
            self.link_free_us = start + len(frame) * 8 * 1000000 // link.rate_bps
            due = self.link_free_us
        due += link.delay_us + jitter_us
        if due < self.last_due_us:
            due = self.last_due_us  # jitter never reorders
        if due < now:
            due = now
        self.last_due_us = due
        if due > now or waited:
            self.counters["delayed"] += 1
        self.queue.append((due, frame))

    def release_held(self, now):
        """A held frame whose successor did not come within hold_ms goes on alone."""
        if self.held is not None and now - self.held[0] >= self.link.hold_us:
            held = self.held
            self.held = None
            self._enqueue(held[1], now, held[2], held[3], True)

    def next_event_us(self):
        """Absolute time (us) of the next due frame or hold timeout; None if nothing waits."""
        best = None
        if self.queue:
            best = self.queue[0][0]
        if self.held is not None:
            t = self.held[0] + self.link.hold_us
            if best is None or t < best:
                best = t
        return best

    def pop_due(self, now):
        """The first queued frame if it is due (the caller counts it as passed once delivered)."""
        if self.queue and self.queue[0][0] <= now:
            return self.queue.pop(0)[1]
        return None


class FaultLink:
    """FaultLink(device, seed, drop=0.0, duplicate=0.0, reorder=0.0, corrupt=0.0, delay_ms=0,
    jitter_ms=0, rate_bps=0, clock=None, direction="both", queue_limit=1000, hold_ms=10)

    The NIC contract (mac, mtu, recv_into, send, wait) over `device`; other attributes (fileno,
    close, ...) pass through to it. See the module docstring for what each fault does.
    """

    def __init__(self, device, seed, drop=0.0, duplicate=0.0, reorder=0.0, corrupt=0.0, delay_ms=0,
                 jitter_ms=0, rate_bps=0, clock=None, direction="both", queue_limit=DEFAULT_QUEUE_LIMIT,
                 hold_ms=DEFAULT_HOLD_MS):
        if direction not in DIRECTIONS:
            raise ValueError("direction must be one of %s" % ", ".join(DIRECTIONS))
        if delay_ms < 0 or jitter_ms < 0 or rate_bps < 0 or hold_ms < 0 or queue_limit < 1:
            raise ValueError("delay_ms, jitter_ms, rate_bps, hold_ms must be >= 0, queue_limit >= 1")
        self.device = device
        self.seed = int(seed)
        self.drop = _check_chance("drop", drop)
        self.duplicate = _check_chance("duplicate", duplicate)
        self.reorder = _check_chance("reorder", reorder)
        self.corrupt = _check_chance("corrupt", corrupt)
        self.delay_us = int(delay_ms * 1000)
        self.jitter_us = int(jitter_ms * 1000)
        self.rate_bps = int(rate_bps)
        self.hold_us = int(hold_ms * 1000)
        self.queue_limit = int(queue_limit)
        self.direction = direction
        self.clock = clock if clock is not None else Clock()
        self.rx = _Pipe("rx", self.seed, direction in ("both", "rx"), self)
        self.tx = _Pipe("tx", self.seed, direction in ("both", "tx"), self)
        self._pull = bytearray(PULL_BUFFER)
        self._dev_wait = getattr(device, "wait", None)
        self._last_ticks = self.clock.ticks_us()
        self._now = 0  # microseconds since the link was made, never wraps

    def settings(self):
        """The configuration as a dict (for JSON reports)."""
        return {"seed": self.seed, "direction": self.direction, "drop": self.drop,
                "duplicate": self.duplicate, "reorder": self.reorder, "corrupt": self.corrupt,
                "delay_ms": self.delay_us / 1000, "jitter_ms": self.jitter_us / 1000,
                "rate_bps": self.rate_bps, "hold_ms": self.hold_us / 1000,
                "queue_limit": self.queue_limit}

    def counters(self):
        """{"rx": {...}, "tx": {...}, and the sums of both by name}."""
        out = {"rx": dict(self.rx.counters), "tx": dict(self.tx.counters)}
        for n in COUNTER_NAMES:
            out[n] = self.rx.counters[n] + self.tx.counters[n]
        return out

    # -- the NIC contract ------------------------------------------------------------------------
    @property
    def mac(self):
        return self.device.mac

    @property
    def mtu(self):
        return getattr(self.device, "mtu", 1500)

    def recv_into(self, buf):
        """One frame into buf -> its length; 0 when none is deliverable now. Never blocks."""
        if not self.rx.faulted:
            n = self.device.recv_into(buf)
            if n:
                self.rx.counters["frames"] += 1
                self.rx.counters["passed"] += 1
            return n
        now = self._tick()
        self._service(now)
        self._pull_rx(now)
        frame = self.rx.pop_due(now)
        if frame is None:
            return 0
        self.rx.counters["passed"] += 1
        n = len(frame)
        if n > len(buf):
            n = len(buf)  # cut as the TAP's read would (a bytearray must not grow)
        buf[0:n] = memoryview(frame)[0:n]
        return n

    def send(self, buf, n):
        """Transmit the first n bytes of buf (now, later, twice or never, as the faults say)."""
        if not self.tx.faulted:
            self.tx.counters["frames"] += 1
            self.tx.counters["passed"] += 1
            return self.device.send(buf, n)
        now = self._tick()
        self._service(now)
        self.tx.admit(bytes(memoryview(buf)[:n]), now)
        self._flush_tx(now)
        return n

    def wait(self, timeout_ms):
        """Block up to timeout_ms until a frame is deliverable (True), sending due tx frames meanwhile."""
        now = self._tick()
        end = now + int(timeout_ms * 1000)
        for _ in range(MAX_WAIT_ROUNDS):
            self._service(now)
            if self.rx.faulted:
                self._pull_rx(now)
                q = self.rx.queue
                if q and q[0][0] <= now:
                    return True
            left = end - now
            if left <= 0:
                return False
            nxt = self.next_event_us()
            t = left if nxt is None else min(left, max(0, nxt - now))
            t_ms = (t + 999) // 1000
            ready = False
            rx_full = self.rx.faulted and len(self.rx.queue) >= self.queue_limit
            if self._dev_wait is not None and not rx_full:  # (a full queue: the device stays readable)
                ready = self._dev_wait(t_ms)
                if ready and not self.rx.faulted:
                    return True
            else:
                self.clock.sleep_ms(t_ms)
            later = self._tick()
            if later == now and not ready and t_ms > 0:
                return False  # a device wait() that does not pass time (a test fake): no progress
            now = later
        return False

    # -- servicing -------------------------------------------------------------------------------
    def service(self):
        """Send due tx frames and release timed-out held frames (for callers that poll the fd)."""
        self._service(self._tick())

    def next_event_ms(self, cap_ms=1000):
        """Milliseconds until the next delayed frame or hold timeout (cap_ms if none)."""
        nxt = self.next_event_us()
        if nxt is None:
            return cap_ms
        d = nxt - self._tick()
        if d <= 0:
            return 0
        ms = (d + 999) // 1000
        return ms if ms < cap_ms else cap_ms

    def next_event_us(self):
        best = None
        for p in (self.rx, self.tx):
            t = p.next_event_us()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def _tick(self):
        t = self.clock.ticks_us()
        d = ticks_diff(t, self._last_ticks)
        self._last_ticks = t
        if d > 0:
            self._now += d
        return self._now

    def _service(self, now):
        self.rx.release_held(now)
        self.tx.release_held(now)
        self._flush_tx(now)

    def _flush_tx(self, now):
        dev = self.device
        for _ in range(self.queue_limit + 2):
            frame = self.tx.pop_due(now)
            if frame is None:
                return
            try:
                dev.send(frame, len(frame))
            except OSError:
                # the frame was accepted earlier: no caller to tell (a TAP that is down gives EIO)
                self.tx.counters["send_errors"] += 1
                continue
            self.tx.counters["passed"] += 1

    def _pull_rx(self, now):
        dev = self.device
        pull = self._pull
        for _ in range(self.queue_limit):
            if len(self.rx.queue) >= self.queue_limit:
                return
            n = dev.recv_into(pull)
            if not n:
                return
            self.rx.admit(bytes(pull[:n]), now)

    def __getattr__(self, name):
        if name == "device":
            raise AttributeError(name)
        return getattr(self.device, name)
