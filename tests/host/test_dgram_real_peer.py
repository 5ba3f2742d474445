"""Datagram sockets against Linux's UDP, in a private network namespace.

Each test makes its own namespace (TestNamespace: tap0, Linux 192.0.2.1/24, the stack at
192.0.2.2) with Linux UDP sockets made in it (threads of this process): an echo server, a
control port that answers b"ready" with two broadcasts (255.255.255.255 and 192.0.2.255) to our
port, a receiver bound to 0.0.0.0 with SO_BROADCAST, an NTP-style server on port 123 answering
48-byte queries, and a port nobody holds (Linux answers ICMP port unreachable). The clients in
tests/host/clients (udp_exchange.py, ntp_time.py) import `socket`, never tcpip: they run over
tcpip on the MicroPython unix port (tests/host/clients/launch.py, through the UDP frame bridge)
and on CPython in-process over a TapDevice; ntp_time.py also on MicroPython's own sockets (the
control: it is a plain socket client). Needs root, /dev/net/tun and iproute2; every wait has a
deadline.
"""
import builtins
import contextlib
import io
import os
import socket
import struct
import sys
import threading
import time

import pytest

from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary
from host_tools.tap import TapDevice
from realpeer import require_environment
from tcpip import errors
from tcpip import socket as tsocket
from tcpip.stack import Stack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "host", "clients")
LAUNCH = os.path.join(CLIENTS, "launch.py")
UDP_EXCHANGE = os.path.join(CLIENTS, "udp_exchange.py")
NTP_TIME = os.path.join(CLIENTS, "ntp_time.py")
LINUX_IP = "192.0.2.1"
SUBNET_BROADCAST = "192.0.2.255"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
ECHO = 7007
CONTROL = 7008
BCAST_OUT = 9999
BCAST_IN = 9998
NTP_SECONDS = 3913056000 + 86400 * 1000 + 4321  # what the server says: a day in 2026
CHILD_TIMEOUT_S = 60


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("datagram tests against Linux", tools=("ip",), micropython=True)


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


class UdpServer:
    """A Linux UDP socket made in ns, served by a thread until close(): `answer(data, src)`
    returns what to send back (None: nothing). `got` lists (data, src) of what arrived."""

    def __init__(self, ns, addr, answer=None, broadcast=False):
        self.got = []
        self.answer = answer
        self.error = None

        def make():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if broadcast:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(addr)
            return s

        self.sock = ns.call(make)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError as exc:
                if not self.stop.is_set():
                    self.error = repr(exc)
                return
            self.got.append((data, src))
            if self.answer is not None:
                try:
                    reply = self.answer(data, src)
                    if reply is not None:
                        self.sock.sendto(reply, src)
                except OSError as exc:
                    self.error = repr(exc)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def ntp_answer(data, src):
    if len(data) != 48:
        return None
    r = bytearray(48)
    r[0] = 0x24  # LI 0, version 4, mode 4 (server)
    r[1] = 2  # stratum
    r[24:32] = data[40:48]  # originate = the client's transmit timestamp
    struct.pack_into("!II", r, 32, NTP_SECONDS, 0)  # receive
    struct.pack_into("!II", r, 40, NTP_SECONDS, 0)  # transmit
    return bytes(r)


@pytest.fixture
def linux(ns):
    """The Linux side: echo, control (broadcasts on b"ready"), broadcast receiver, NTP."""
    made = {}

    def make_sender():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.bind((LINUX_IP, 0))  # a source address: Linux then sends 255.255.255.255 out of tap0
        return s

    sender = ns.call(make_sender)

    def control(data, src):
        if data == b"ready":
            sender.sendto(b"linux-all", ("255.255.255.255", src[1]))
            sender.sendto(b"linux-subnet", (SUBNET_BROADCAST, src[1]))
        return None

    try:
        made["echo"] = UdpServer(ns, (LINUX_IP, ECHO), lambda data, src: data)
        made["control"] = UdpServer(ns, (LINUX_IP, CONTROL), control)
        made["bcast"] = UdpServer(ns, ("", BCAST_OUT), broadcast=True)
        made["ntp"] = UdpServer(ns, (LINUX_IP, 123), ntp_answer)
        yield made
    finally:
        for s in made.values():
            s.close()
        sender.close()


@contextlib.contextmanager
def frame_bridge(ns):
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 120},
                             daemon=True)
    relay.start()
    try:
        yield bridge
    finally:
        stop.set()
        relay.join(5)
        bridge.close()


def run_on_micropython(ns, client, *args):
    """The client over tcpip on the unix port: (exit status, stdout, stderr)."""
    with frame_bridge(ns) as bridge:
        proc = ns.run([micropython_binary(), LAUNCH, str(bridge.port), STACK_ADDR, LINUX_IP, client]
                      + list(args), check=False, timeout=CHILD_TIMEOUT_S, env=child_env(), cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def run_on_cpython(ns, client, *args):
    """The client over tcpip on CPython in this process (a TapDevice; `import socket` answered
    with tcpip.socket): (0 or 1, stdout, traceback text)."""

    def body():
        out = io.StringIO()
        real_import = builtins.__import__

        def importer(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "socket" and level == 0:
                return tsocket
            return real_import(name, globals, locals, fromlist, level)

        names = dict(vars(builtins))
        names["__import__"] = importer
        with open(client) as f:
            code = compile(f.read(), client, "exec")
        saved = sys.argv
        rc, err = 0, ""
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev, addr=STACK_ADDR, gateway=LINUX_IP)
            tsocket.set_default_stack(stack)
            sys.argv = [client] + list(args)
            try:
                with contextlib.redirect_stdout(out):
                    exec(code, {"__name__": "__main__", "__file__": client, "__builtins__": names})
            except Exception:
                import traceback

                rc, err = 1, traceback.format_exc()
            finally:
                sys.argv = saved
                tsocket.set_default_stack(None)
            print("counters", " ".join("%s=%d" % kv for kv in sorted(stack.counters.nonzero().items())),
                  file=out)
        return rc, out.getvalue(), err

    return ns.call(body, timeout=CHILD_TIMEOUT_S)


def parse(stdout):
    out = {}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        out.setdefault(key, []).append(rest)
    return out


def check_exchange(rc, stdout, stderr, linux):
    diag = "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- linux ---\n%r" % (
        rc, stdout, stderr, dict((k, (v.got, v.error)) for k, v in linux.items()))
    assert rc == 0, diag
    got = parse(stdout)
    assert "done" in got, diag
    # echo: every size up to the largest datagram, byte-exact, from the server's address
    assert got["echo"] == ["%d ok %s %d" % (n, LINUX_IP, ECHO) for n in (0, 1, 100, 1472)], diag
    assert got["big"] == [str(errors.EMSGSIZE)], diag
    port = int(got["port"][0])
    assert 49152 <= port <= 65535, diag
    echoed = [(len(d), src) for d, src in linux["echo"].got]
    assert echoed[:4] == [(n, (STACK_IP, port)) for n in (0, 1, 100, 1472)], diag
    assert got["poll"] == ["1 polled"], diag
    # broadcast out: refused without SO_BROADCAST, then both kinds heard by Linux, from us
    assert got["nobroadcast"] == ["13"], diag  # EACCES
    heard = sorted(d for d, src in linux["bcast"].got if src[0] == STACK_IP)
    assert heard == [b"to-all", b"to-subnet"], diag
    # broadcast in: Linux's two broadcasts reached our socket bound to 0.0.0.0
    assert sorted(got["heard"]) == sorted(["linux-all " + LINUX_IP, "linux-subnet " + LINUX_IP]), diag
    # ICMP port unreachable: ECONNREFUSED once on the connected socket, nothing on the other
    assert got["refused"] == [str(errors.ECONNREFUSED)], diag
    assert got["again"] == [str(errors.EAGAIN)], diag
    assert got["unconnected"] == [str(errors.ETIMEDOUT)], diag
    assert all(e.error is None for e in linux.values()), diag
    return got


def counters_of(got):
    return dict(kv.split("=") for kv in got.get("counters", [""])[0].split())


def test_udp_exchange_on_micropython_over_tcpip(ns, linux):
    rc, out, err = run_on_micropython(ns, UDP_EXCHANGE, LINUX_IP, SUBNET_BROADCAST)
    check_exchange(rc, out, err, linux)


def test_udp_exchange_on_cpython_over_tcpip(ns, linux):
    rc, out, err = run_on_cpython(ns, UDP_EXCHANGE, LINUX_IP, SUBNET_BROADCAST)
    got = check_exchange(rc, out, err, linux)
    c = counters_of(got)
    assert int(c["udp_sock_icmp_error"]) == 1 and int(c["udp_sock_icmp_ignored"]) == 1, got
    assert "udp_sock_rcvbuf_errors" not in c and "udp_drop_bad_checksum" not in c, got


def check_ntp(rc, out, err, linux, from_stack):
    diag = "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- server ---\n%r %r" % (
        rc, out, err, linux["ntp"].got, linux["ntp"].error)
    assert rc == 0, diag
    got = parse(out)
    assert got["ntp"] == [str(NTP_SECONDS)] and got["unix"] == [str(NTP_SECONDS - 2208988800)], diag
    queries = linux["ntp"].got
    assert len(queries) == 1 and len(queries[0][0]) == 48 and queries[0][0][0] == 0x23, diag
    if from_stack:
        assert queries[0][1][0] == STACK_IP and 49152 <= queries[0][1][1] <= 65535, diag


def test_ntp_client_on_micropython_over_tcpip(ns, linux):
    rc, out, err = run_on_micropython(ns, NTP_TIME, LINUX_IP)
    check_ntp(rc, out, err, linux, from_stack=True)


def test_ntp_client_on_cpython_over_tcpip(ns, linux):
    rc, out, err = run_on_cpython(ns, NTP_TIME, LINUX_IP)
    check_ntp(rc, out, err, linux, from_stack=True)


def test_ntp_client_is_a_plain_socket_client_on_micropython_sockets(ns, linux):
    # control: the same script on MicroPython's own socket module (Linux's stack, in the namespace)
    proc = ns.run([micropython_binary(), NTP_TIME, LINUX_IP], check=False, timeout=CHILD_TIMEOUT_S,
                  env=child_env(), cwd=ROOT)
    check_ntp(proc.returncode, proc.stdout, proc.stderr, linux, from_stack=False)
