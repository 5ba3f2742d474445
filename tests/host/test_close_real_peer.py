"""Every TCP close path, observed from both ends, against the real Linux kernel.

Our stack runs in-process (CPython) on tap0 of a private namespace (TestNamespace: Linux is
192.0.2.1, we are 192.0.2.2); the Linux end is a plain Python socket made inside the namespace and
driven step by step from the test thread. Our stack only acts inside stack.poll()/run_until(), so a
kernel segment can be left waiting in the TAP queue while we act (simultaneous close).

The kernel's state comes from `ss -tanH` inside the namespace, ours from tcb.state_name() and the
stack's trace hook (every state change, timed). Every frame in and out is written to a pcap under
pytest's tmp_path; a failing assertion prints the segment trace. Needs root, /dev/net/tun, iproute2.
Every wait is bounded in count and time.
"""
import errno
import hashlib
import select
import socket
import struct
import time

import pytest

from host_tools.netns import TestNamespace
from realpeer import payload, require_environment
from host_tools.pcap import PcapTap, PcapWriter, read_pcap
from host_tools.tap import TapDevice
from tcpip import tcp
from tcpip.stack import Stack
from tcpip.tcp import TcpConfig
from wirerep import ipv4

LINUX_IP = "192.0.2.1"
STACK_IP = "192.0.2.2"
STACK_ADDR = "192.0.2.2/24"
TIME_WAIT_MS = 300
FIN_WAIT2_MS = 400
STEP_TIMEOUT_MS = 3000  # any single protocol step against a local kernel takes far less


@pytest.fixture(scope="module", autouse=True)
def real_peer_environment():
    require_environment("real-peer tests", tools=("ip", "ss"))


# -- segment trace from the pcap (diagnostics) ------------------------------------------------------
def _flags_text(f):
    return "".join(c for c, bit in (("F", 1), ("S", 2), ("R", 4), ("P", 8), (".", 16)) if f & bit)


def segment_trace(path, limit=80):
    """One line per TCP segment in the pcap: time, direction, flags, seq, ack, len, window."""
    try:
        packets = read_pcap(path)
    except (OSError, ValueError) as exc:
        return "(no pcap: %r)" % exc
    lines = []
    t0 = None
    for ts, fr in packets:
        if len(fr) < 54 or fr[12:14] != b"\x08\x00" or fr[23] != 6:
            continue
        if t0 is None:
            t0 = ts
        ihl = (fr[14] & 15) * 4
        total = struct.unpack_from("!H", fr, 16)[0]
        t = 14 + ihl
        sport, dport, seq, ack = struct.unpack_from("!HHII", fr, t)
        hl = (fr[t + 12] >> 4) * 4
        win = struct.unpack_from("!H", fr, t + 14)[0]
        direction = "us->linux" if socket.inet_ntoa(fr[26:30]) == STACK_IP else "linux->us"
        lines.append("%8.1f ms %s %d>%d [%s] seq=%d ack=%d len=%d win=%d" % (
            (ts - t0) * 1000, direction, sport, dport, _flags_text(fr[t + 13]), seq, ack,
            total - ihl - hl, win))
    if len(lines) > limit:
        lines = lines[:limit // 2] + ["... %d more ..." % (len(lines) - limit)] + lines[-limit // 2:]
    return "\n".join(lines)


# -- the environment: namespace, TAP, our stack, kernel sockets ---------------------------------------
class Env:
    def __init__(self, ns, dev, pcap_path, writer, **tcp_kw):
        self.ns = ns
        self.dev = dev
        self.pcap_path = pcap_path
        self.writer = writer
        cfg = dict(time_wait_ms=TIME_WAIT_MS, fin_wait2_ms=FIN_WAIT2_MS)
        cfg.update(tcp_kw)
        self.stack = Stack(PcapTap(dev, writer), addr=STACK_ADDR, tcp_config=TcpConfig(**cfg))
        self.events = []  # (monotonic s, tcb, state name)
        self.stack.trace = self._trace
        self.sockets = []

    def _trace(self, event, tcb, detail):
        if event == "state":
            self.events.append((time.monotonic(), tcb, detail))

    # what went on, for assertion messages
    def diag(self, tcb=None):
        self.writer.flush()
        out = ["our states: %s" % self.states(tcb) if tcb is not None else "",
               "counters: %s" % self.stack.counters.nonzero(),
               "kernel (ss -tanH):\n" + self.ss_text(),
               "pcap %s:\n%s" % (self.pcap_path, segment_trace(self.pcap_path))]
        return "\n".join(out)

    def states(self, tcb):
        """Our state changes for tcb after ESTABLISHED, in order."""
        names = [name for _, t, name in self.events if t is tcb]
        if "ESTABLISHED" in names:
            names = names[names.index("ESTABLISHED") + 1:]
        return names

    def entered(self, tcb, name):
        """When (monotonic s) tcb last entered state `name`."""
        for ts, t, n in reversed(self.events):
            if t is tcb and n == name:
                return ts
        raise AssertionError("never entered %s: %s" % (name, self.states(tcb)))

    # -- kernel side --
    def ss_text(self):
        return self.ns.run(["ss", "-tanH"], check=False).stdout

    def kstate(self, tcb, kport):
        """The kernel's state for its end of tcb's connection (ss names: ESTAB, FIN-WAIT-1, ...),
        None if the kernel has no socket for that 4-tuple."""
        local = "%s:%d" % (LINUX_IP, kport)
        peer = "%s:%d" % (STACK_IP, tcb.local_port)
        for line in self.ss_text().splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[3] == local and cols[4] == peer:
                return cols[0]
        return None

    def wait_kstate(self, tcb, kport, want, run_stack, timeout_s=3.0):
        """Poll ss (bounded) until the kernel's state is in `want` (None: no socket). Our stack runs
        between looks only if run_stack; otherwise frames wait in the TAP queue. Returns the state."""
        want = want if isinstance(want, (tuple, list, set)) else (want,)
        deadline = time.monotonic() + timeout_s
        state = "?"
        for _ in range(1000):
            state = self.kstate(tcb, kport)
            if state in want or time.monotonic() >= deadline:
                break
            if run_stack:
                self.stack.run_until(lambda: False, 10)
            else:
                select.select([], [], [], 0.01)
        return state

    def pair(self, kport, **connect_kw):
        """Connect our stack to a fresh kernel listener on kport: (tcb, kernel's accepted socket)."""
        lsock = self.ns.call(socket.create_server, (LINUX_IP, kport))
        self.sockets.append(lsock)
        tcb = self.stack.tcp.connect(None, 0, ipv4.aton(LINUX_IP), kport, **connect_kw)
        assert self.stack.run_until(lambda: tcb.state != tcp.SYN_SENT, STEP_TIMEOUT_MS), self.diag(tcb)
        assert tcb.state_name() == "ESTABLISHED", self.diag(tcb)
        lsock.settimeout(3)
        k, peer = lsock.accept()
        self.sockets.append(k)
        assert peer == (STACK_IP, tcb.local_port)
        k.setblocking(False)
        assert self.kstate(tcb, kport) == "ESTAB", self.diag(tcb)
        return tcb, k

    # -- data both ways, our stack serviced meanwhile --
    def send_to_kernel(self, tcb, k, data, timeout_s=5.0):
        """We send data; the kernel reads it. Returns what the kernel read."""
        got = bytearray()
        off = 0
        deadline = time.monotonic() + timeout_s
        for _ in range(100000):
            if off < len(data):
                off += tcb.send(data, off, len(data) - off)
            self.stack.run_until(lambda: False, 2)
            got += kernel_recv_some(k)
            if len(got) >= len(data) or time.monotonic() >= deadline:
                break
        return bytes(got)

    def recv_from_kernel(self, tcb, k, data, timeout_s=10.0, during=None):
        """The kernel sends data (non-blocking, as its buffer allows); we read it. `during(tcb)`
        is called after every step (assertions on our state). Returns what we read."""
        got = bytearray()
        buf = bytearray(65536)
        off = 0
        deadline = time.monotonic() + timeout_s
        for _ in range(100000):
            if off < len(data):
                try:
                    off += k.send(data[off:off + 65536])
                except BlockingIOError:
                    pass
            self.stack.run_until(lambda: tcb.rx_len > 0, 5)
            n = tcb.recv_into(buf, 0, len(buf))
            got += buf[:n]
            if during is not None:
                during(tcb)
            if len(got) >= len(data) or time.monotonic() >= deadline:
                break
        return bytes(got)

    def close(self):
        for s in self.sockets:
            s.close()
        self.dev.close()
        self.writer.close()


def kernel_recv_some(k):
    try:
        return k.recv(65536)
    except BlockingIOError:
        return b""


def kernel_recv_eof(env, k, timeout_s=3.0):
    """Read from the kernel socket until EOF (b""), bounded; returns the bytes before it, or None
    if no EOF came in time. Our stack runs meanwhile."""
    got = bytearray()
    deadline = time.monotonic() + timeout_s
    for _ in range(10000):
        try:
            chunk = k.recv(65536)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            return bytes(got)
        if chunk:
            got += chunk
        if time.monotonic() >= deadline:
            return None
        env.stack.run_until(lambda: False, 5)
    return None


def kernel_error(fn):
    """errno of the OSError fn() raises, or None if it returned."""
    try:
        fn()
    except OSError as exc:
        return exc.errno
    return None


@pytest.fixture
def make_env(tmp_path, request):
    made = []
    spaces = []

    def make(**tcp_kw):
        ns = TestNamespace()
        ns.create()
        spaces.append(ns)
        dev = ns.call(TapDevice, ns.tap)
        path = str(tmp_path / (request.node.name + ".pcap"))
        env = Env(ns, dev, path, PcapWriter(path, flush=False), **tcp_kw)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
    for ns in spaces:
        ns.close()


# -- 1. active close by us ----------------------------------------------------------------------------
def test_active_close_by_us(make_env):
    env = make_env()
    tcb, k = env.pair(7101)
    up = payload(3000, 1)
    assert env.send_to_kernel(tcb, k, up) == up, env.diag(tcb)
    down = payload(2000, 2)
    assert env.recv_from_kernel(tcb, k, down) == down, env.diag(tcb)

    tcb.close()  # FIN goes out at once: nothing is queued
    assert tcb.state_name() == "FIN-WAIT-1", env.diag(tcb)
    # the kernel took our FIN (it is processed as the TAP write happens): CLOSE-WAIT
    assert env.wait_kstate(tcb, 7101, "CLOSE-WAIT", run_stack=False) == "CLOSE-WAIT", env.diag(tcb)
    assert tcb.state_name() == "FIN-WAIT-1"  # its ACK waits in the TAP queue until we poll
    assert env.stack.run_until(lambda: tcb.state == tcp.FIN_WAIT_2, STEP_TIMEOUT_MS), env.diag(tcb)
    assert kernel_recv_eof(env, k) == b"", env.diag(tcb)

    k.close()  # the kernel's FIN: LAST-ACK until we ACK it
    assert env.wait_kstate(tcb, 7101, "LAST-ACK", run_stack=False) == "LAST-ACK", env.diag(tcb)
    assert tcb.state_name() == "FIN-WAIT-2"
    # closed by the application: TIME-WAIT goes on as a 24-byte record (Tcp.time_wait, Linux's
    # inet_timewait_sock) that holds the 4-tuple; the Tcb ends at once
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.states(tcb) == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"], env.diag(tcb)
    assert tcb not in env.stack.tcp.tcbs and env.stack.tcp.tw_n == 1
    entered = env.entered(tcb, "TIME-WAIT")
    # our ACK ended the kernel's side: its socket is gone (no TIME-WAIT for the passive closer)
    assert env.wait_kstate(tcb, 7101, None, run_stack=True) is None, env.diag(tcb)
    assert env.stack.run_until(lambda: env.stack.tcp.tw_n == 0, TIME_WAIT_MS + STEP_TIMEOUT_MS), env.diag(tcb)
    held = (time.monotonic() - entered) * 1000
    assert TIME_WAIT_MS - 5 <= held <= TIME_WAIT_MS + 250, "TIME-WAIT lasted %.0f ms" % held
    assert tcb.error == 0
    assert env.stack.counters.tcp_rst_received == 0 and env.stack.counters.tcp_abort_on_close == 0


# -- 2. passive close ---------------------------------------------------------------------------------
def test_passive_close(make_env):
    env = make_env()
    tcb, k = env.pair(7102)
    down = payload(1500, 3)
    k.sendall(down)
    k.shutdown(socket.SHUT_WR)  # the kernel closes first (sending side: it still reads)
    assert env.wait_kstate(tcb, 7102, "FIN-WAIT-1", run_stack=False) == "FIN-WAIT-1", env.diag(tcb)

    assert env.stack.run_until(lambda: tcb.fin_received, STEP_TIMEOUT_MS), env.diag(tcb)
    assert tcb.state_name() == "CLOSE-WAIT", env.diag(tcb)
    assert tcb.readable()
    buf = bytearray(4096)
    n = tcb.recv_into(buf, 0, len(buf))
    assert bytes(buf[:n]) == down, env.diag(tcb)
    assert tcb.recv_into(buf, 0, len(buf)) == 0 and tcb.fin_received  # EOF
    assert env.wait_kstate(tcb, 7102, "FIN-WAIT-2", run_stack=True) == "FIN-WAIT-2", env.diag(tcb)

    # in CLOSE-WAIT we may still send: the kernel reads it
    up = payload(5000, 4)
    assert env.send_to_kernel(tcb, k, up) == up, env.diag(tcb)
    assert tcb.state_name() == "CLOSE-WAIT"

    tcb.close()
    assert tcb.state_name() == "LAST-ACK", env.diag(tcb)
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, STEP_TIMEOUT_MS), env.diag(tcb)
    assert tcb.error == 0 and tcb not in env.stack.tcp.tcbs
    assert env.wait_kstate(tcb, 7102, "TIME-WAIT", run_stack=True) == "TIME-WAIT", env.diag(tcb)
    assert kernel_recv_eof(env, k) == b""
    assert env.states(tcb) == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"], env.diag(tcb)


# -- 3. simultaneous close ----------------------------------------------------------------------------
def test_simultaneous_close(make_env):
    env = make_env()
    tcb, k = env.pair(7103)
    up = payload(700, 5)
    assert env.send_to_kernel(tcb, k, up) == up, env.diag(tcb)

    k.shutdown(socket.SHUT_WR)  # the kernel's FIN waits, unread, in the TAP queue
    assert env.wait_kstate(tcb, 7103, "FIN-WAIT-1", run_stack=False) == "FIN-WAIT-1", env.diag(tcb)
    tcb.close()  # ours crosses it: it does not acknowledge the kernel's FIN
    assert tcb.state_name() == "FIN-WAIT-1" and not tcb.fin_received, env.diag(tcb)
    # the kernel got a FIN while its own was unacknowledged: CLOSING
    assert env.wait_kstate(tcb, 7103, "CLOSING", run_stack=False) == "CLOSING", env.diag(tcb)

    # TIME-WAIT as a record (the application closed): the Tcb ends at once
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.states(tcb) == ["FIN-WAIT-1", "CLOSING", "TIME-WAIT", "CLOSED"], env.diag(tcb)
    assert env.stack.tcp.tw_n == 1
    entered = env.entered(tcb, "TIME-WAIT")
    assert env.wait_kstate(tcb, 7103, "TIME-WAIT", run_stack=True) == "TIME-WAIT", env.diag(tcb)
    assert kernel_recv_eof(env, k) == b""
    assert env.stack.run_until(lambda: env.stack.tcp.tw_n == 0, TIME_WAIT_MS + STEP_TIMEOUT_MS), env.diag(tcb)
    held = (time.monotonic() - entered) * 1000
    assert TIME_WAIT_MS - 5 <= held <= TIME_WAIT_MS + 250, "TIME-WAIT lasted %.0f ms" % held
    assert tcb.error == 0
    assert env.stack.counters.tcp_rst_received == 0


# -- 4. half-close: we stop sending, the kernel answers with 100 KB ------------------------------------
def test_half_close_then_100k_reply(make_env):
    env = make_env()
    tcb, k = env.pair(7104)
    request = payload(5000, 6)
    off = 0
    for _ in range(1000):
        off += tcb.send(request, off, len(request) - off)
        if off == len(request):
            break
        env.stack.run_until(lambda: tcb.tx_free() > 0, 50)
    assert off == len(request), env.diag(tcb)
    tcb.shutdown_write()  # FIN after the queued data
    assert tcb.fin_pending
    # the kernel reads the whole request, then EOF
    assert kernel_recv_eof(env, k) == request, env.diag(tcb)
    assert env.stack.run_until(lambda: tcb.state == tcp.FIN_WAIT_2, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.kstate(tcb, 7104) == "CLOSE-WAIT", env.diag(tcb)

    reply = payload(100 * 1024, 7)
    seen = set()

    def still_half_open(t):
        seen.add(t.state_name())
        assert t.state == tcp.FIN_WAIT_2, env.diag(t)

    t0 = time.monotonic()
    got = env.recv_from_kernel(tcb, k, reply, during=still_half_open)
    elapsed = time.monotonic() - t0
    assert len(got) == len(reply), "%d of %d bytes\n%s" % (len(got), len(reply), env.diag(tcb))
    assert hashlib.sha256(got).digest() == hashlib.sha256(reply).digest(), env.diag(tcb)
    assert seen == {"FIN-WAIT-2"}
    print("\n100 KB in FIN-WAIT-2: %.2f s" % elapsed)

    k.close()
    assert env.wait_kstate(tcb, 7104, "LAST-ACK", run_stack=False) == "LAST-ACK", env.diag(tcb)
    assert env.stack.run_until(lambda: tcb.state == tcp.TIME_WAIT, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.wait_kstate(tcb, 7104, None, run_stack=True) is None, env.diag(tcb)
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, TIME_WAIT_MS + STEP_TIMEOUT_MS), env.diag(tcb)
    assert tcb.error == 0
    assert env.states(tcb) == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"], env.diag(tcb)
    assert env.stack.counters.tcp_abort_on_data == 0 and env.stack.counters.tcp_rst_received == 0


# -- 5. abort by us -----------------------------------------------------------------------------------
def test_abort_by_us(make_env):
    env = make_env()
    tcb, k = env.pair(7105)
    up = payload(1000, 8)
    assert env.send_to_kernel(tcb, k, up) == up, env.diag(tcb)
    tcb.abort()
    assert tcb.state_name() == "CLOSED" and tcb.error == 0
    assert tcb not in env.stack.tcp.tcbs
    assert env.wait_kstate(tcb, 7105, None, run_stack=True) is None, env.diag(tcb)
    assert kernel_error(lambda: k.recv(100)) == errno.ECONNRESET, env.diag(tcb)
    assert env.states(tcb) == ["CLOSED"]


# -- 6. the kernel aborts -----------------------------------------------------------------------------
def test_kernel_aborts(make_env):
    env = make_env()
    tcb, k = env.pair(7106)
    down = payload(900, 9)
    assert env.recv_from_kernel(tcb, k, down) == down, env.diag(tcb)
    k.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    k.close()  # linger 0: RST instead of FIN
    assert env.wait_kstate(tcb, 7106, None, run_stack=False) is None, env.diag(tcb)
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, STEP_TIMEOUT_MS), env.diag(tcb)
    assert tcb.error == errno.ECONNRESET, env.diag(tcb)
    assert tcb not in env.stack.tcp.tcbs
    assert env.stack.counters.tcp_rst_received == 1
    assert env.states(tcb) == ["CLOSED"]


# -- 7. close with unread data ------------------------------------------------------------------------
def test_close_with_unread_data_resets(make_env):
    env = make_env()
    tcb, k = env.pair(7107)
    k.sendall(payload(1000, 10))
    assert env.stack.run_until(lambda: tcb.rx_len == 1000, STEP_TIMEOUT_MS), env.diag(tcb)
    tcb.close()  # 1000 bytes never read: RST, as Linux tcp_close (RFC 2525 2.17)
    assert tcb.state_name() == "CLOSED" and tcb.error == 0, env.diag(tcb)
    assert env.stack.counters.tcp_abort_on_close == 1
    assert env.wait_kstate(tcb, 7107, None, run_stack=True) is None, env.diag(tcb)
    # a RST, not a FIN: the kernel's recv fails instead of returning EOF
    assert kernel_error(lambda: k.recv(100)) == errno.ECONNRESET, env.diag(tcb)
    assert env.states(tcb) == ["CLOSED"]


# -- 8. data after our close --------------------------------------------------------------------------
def test_data_after_our_close_is_answered_with_rst(make_env):
    env = make_env()
    tcb, k = env.pair(7108)
    tcb.close()
    assert env.stack.run_until(lambda: tcb.state == tcp.FIN_WAIT_2, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.kstate(tcb, 7108) == "CLOSE-WAIT", env.diag(tcb)
    assert kernel_recv_eof(env, k) == b""
    k.send(b"late data nobody will read")  # allowed in CLOSE-WAIT
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, STEP_TIMEOUT_MS), env.diag(tcb)
    assert tcb.error == 0  # the socket was closed: no one to tell
    assert env.stack.counters.tcp_abort_on_data == 1
    assert env.wait_kstate(tcb, 7108, None, run_stack=True) is None, env.diag(tcb)
    # Linux reports a RST in CLOSE-WAIT as EPIPE (tcp_reset), elsewhere ECONNRESET
    assert kernel_error(lambda: k.send(b"more")) in (errno.EPIPE, errno.ECONNRESET), env.diag(tcb)
    assert env.states(tcb) == ["FIN-WAIT-1", "FIN-WAIT-2", "CLOSED"], env.diag(tcb)


# -- 9. orphan FIN-WAIT-2 timeout ---------------------------------------------------------------------
def test_orphan_fin_wait2_timeout(make_env):
    env = make_env()
    tcb, k = env.pair(7109)
    tcb.close()
    assert env.stack.run_until(lambda: tcb.state == tcp.FIN_WAIT_2, STEP_TIMEOUT_MS), env.diag(tcb)
    assert env.kstate(tcb, 7109) == "CLOSE-WAIT", env.diag(tcb)
    # the kernel never closes: after fin_wait2_ms we send a RST and forget the connection
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, FIN_WAIT2_MS + STEP_TIMEOUT_MS), env.diag(tcb)
    waited = (env.entered(tcb, "CLOSED") - env.entered(tcb, "FIN-WAIT-2")) * 1000
    assert FIN_WAIT2_MS - 5 <= waited <= FIN_WAIT2_MS + 250, "FIN-WAIT-2 lasted %.0f ms" % waited
    assert tcb.error == 0 and tcb not in env.stack.tcp.tcbs
    assert env.stack.counters.tcp_fin_wait2_timeout == 1
    # a CLOSE-WAIT socket only disappears on a RST
    assert env.wait_kstate(tcb, 7109, None, run_stack=True) is None, env.diag(tcb)
    assert kernel_error(lambda: k.send(b"x")) in (errno.EPIPE, errno.ECONNRESET), env.diag(tcb)
    assert env.states(tcb) == ["FIN-WAIT-1", "FIN-WAIT-2", "CLOSED"], env.diag(tcb)


# -- 10. keep-alive against the kernel ----------------------------------------------------------------
def kernel_mib(env, name):
    """A TcpExt counter of the namespace's kernel (/proc/net/netstat), e.g. TCPACKSkippedSeq."""
    lines = env.ns.run(["cat", "/proc/net/netstat"]).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], (int(v) for v in values.split()[1:]))).get(name)
    return None


KA_IDLE, KA_INTERVAL, KA_COUNT = 200, 100, 3


def keepalive_unreachable_phase(env, tcb, k, kport):
    """Just after an answered probe, make the kernel unreachable for us: a /32 blackhole route to
    192.0.2.2 makes the kernel drop its answers (our probes still reach it). We must give up
    with ETIMEDOUT after exactly ka_count unanswered probes, and say so with a RST."""
    c = env.stack.counters
    before = c.tcp_keepalive_probe
    env.ns.ip("route", "add", "blackhole", STACK_IP + "/32")
    t1 = time.monotonic()
    limit = tcb.ka_idle + tcb.ka_count * tcb.ka_interval
    assert env.stack.run_until(lambda: tcb.state == tcp.CLOSED, limit + 2000), env.diag(tcb)
    took = (time.monotonic() - t1) * 1000
    assert tcb.error == errno.ETIMEDOUT, env.diag(tcb)
    assert c.tcp_keepalive_timeout == 1
    assert c.tcp_keepalive_probe - before == tcb.ka_count, env.diag(tcb)
    assert took <= limit + 300, "gave up after %.0f ms (idle + count * interval = %d)" % (took, limit)
    # our RST (Linux's tcp_keepalive_timer sends one too) still reaches the kernel: it resets
    assert env.wait_kstate(tcb, kport, None, run_stack=True) is None, env.diag(tcb)
    assert kernel_error(lambda: k.recv(100)) == errno.ECONNRESET, env.diag(tcb)
    return took


def test_keepalive_answered_then_peer_unreachable(make_env):
    """The keep-alive mechanism itself. Linux answers a zero-length out-of-window segment (our
    probe, SEG.SEQ = RCV.NXT - 1) at most once per net.ipv4.tcp_invalid_ratelimit (500 ms) per
    socket (tcp_oow_rate_limited); probes 100 ms apart would be rate limited, so the namespace's
    kernel answers every one here (ratelimit 0). The default is the next test."""
    env = make_env()
    env.ns.sysctl("net.ipv4.tcp_invalid_ratelimit", 0)
    tcb, k = env.pair(7110)
    tcb.set_keepalive(True, idle_ms=KA_IDLE, interval_ms=KA_INTERVAL, count=KA_COUNT)
    c = env.stack.counters
    t0 = time.monotonic()
    # five idle periods, every probe answered: still ESTABLISHED, probes stay at 0
    assert env.stack.run_until(lambda: c.tcp_keepalive_probe >= 5 and tcb.probes == 0 or tcb.state != tcp.ESTABLISHED,
                               10 * tcb.ka_idle + 2000), env.diag(tcb)
    assert tcb.state_name() == "ESTABLISHED", env.diag(tcb)
    alive = time.monotonic() - t0
    assert alive * 1000 >= 5 * tcb.ka_idle - 20, "5 probes in %.0f ms" % (alive * 1000)
    assert env.kstate(tcb, 7110) == "ESTAB"
    assert kernel_mib(env, "TCPACKSkippedSeq") == 0
    print("\n%d probes answered in %.2f s" % (c.tcp_keepalive_probe, alive))
    took = keepalive_unreachable_phase(env, tcb, k, 7110)
    print("unreachable: ETIMEDOUT after %.0f ms" % took)


def test_keepalive_fast_probes_against_linux_default_ratelimit(make_env):
    """The same short keep-alive times against Linux as it comes (tcp_invalid_ratelimit 500 ms): a
    live peer must not be declared dead. Linux itself never meets this: TCP_KEEPINTVL and
    TCP_KEEPIDLE are whole seconds (>= 1 s), beyond the 500 ms rate limit."""
    env = make_env()
    tcb, k = env.pair(7111)
    tcb.set_keepalive(True, idle_ms=KA_IDLE, interval_ms=KA_INTERVAL, count=KA_COUNT)
    c = env.stack.counters
    t0 = time.monotonic()
    env.stack.run_until(lambda: c.tcp_keepalive_probe >= 5 and tcb.probes == 0 or tcb.state != tcp.ESTABLISHED,
                        10 * tcb.ka_idle + 2000)
    alive = time.monotonic() - t0
    assert tcb.state_name() == "ESTABLISHED", (
        "a live Linux peer declared dead after %.0f ms (error %d, %d probes; the kernel skipped "
        "%s rate-limited answers, TCPACKSkippedSeq)\n%s" % (
            alive * 1000, tcb.error, c.tcp_keepalive_probe, kernel_mib(env, "TCPACKSkippedSeq"),
            env.diag(tcb)))
    assert c.tcp_keepalive_probe >= 5 and tcb.probes == 0, env.diag(tcb)
    assert alive * 1000 >= 5 * tcb.ka_idle - 20, "5 probes in %.0f ms" % (alive * 1000)
    assert env.kstate(tcb, 7111) == "ESTAB"
    keepalive_unreachable_phase(env, tcb, k, 7111)
