"""DHCP and DNS against Debian's dnsmasq, in a private network namespace.

dnsmasq runs in a TestNamespace on tap0 (192.0.2.1/24) as DHCP server (range 192.0.2.50-99,
120 s leases -- dnsmasq's minimum -- with router and DNS server options, and T1/T2 set to 3 s and
6 s with dhcp-option 58/59 so a renewal happens within the test) and DNS server
(--address=/example.test/192.0.2.1, web.test with a CNAME alias.test, --local=/test/ so other .test
names are NXDOMAIN, no upstream, local TTL 30 s). --no-ping: dnsmasq would otherwise ping each
address for 3 s before offering it. Its log goes to stderr (read here) and its lease file to tmp.

Our stack runs in-process over a TapDevice (CPython) and, once, on the MicroPython unix port
through the UDP frame bridge. Checked: the lease (address in the range, prefix, gateway, DNS
server, lease/T1/T2 as dnsmasq sent them), dnsmasq's lease file naming our MAC and hostname, the
unicast renewal at T1 (dnsmasq logs a second DHCPREQUEST/DHCPACK and moves the expiry), DHCPRELEASE
(the lease disappears), a NAK when dnsmasq restarts with another range (we start again and get a
new address), name resolution (A, CNAME, NXDOMAIN -> OSError(-2), the TTL cache), and a TCP
connection made by name through tcpip.socket.getaddrinfo to a Python server in the namespace.
Needs root, /dev/net/tun, iproute2 and dnsmasq (Debian dnsmasq-base); missing ones fail the tests
with their names, never skip them. Every wait has a deadline; the file takes about 15 s.
"""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary, read_line
from host_tools.tap import TapDevice, mac_text
from realpeer import require_environment
from tcpip import dhcp as tdhcp
from tcpip import socket as tsocket
from tcpip.dhcp import DhcpClient
from tcpip.dns import Resolver
from tcpip.stack import Stack
from wirerep import ipv4

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX_IP = "192.0.2.1"
PORT = 8080
T1_S = 3
T2_S = 6
LEASE_S = 120


def dnsmasq_binary():
    for path in (shutil.which("dnsmasq"), "/usr/sbin/dnsmasq", "/sbin/dnsmasq"):
        if path and os.path.exists(path):
            return path
    return None


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("DHCP/DNS tests against dnsmasq", tools=("ip",))
    if dnsmasq_binary() is None:
        pytest.fail("'dnsmasq' is not installed (Debian package dnsmasq-base; scripts/setup.sh "
                    "installs it)", pytrace=False)


class Dnsmasq:
    """dnsmasq --no-daemon inside ns, logging to stderr, which a thread collects into `lines`."""

    def __init__(self, ns, tmp, low="192.0.2.50", high="192.0.2.99"):
        self.ns = ns
        self.leasefile = os.path.join(str(tmp), "dnsmasq.leases")
        self.logfile = os.path.join(str(tmp), "dnsmasq.log")
        self.lines = []
        self._lock = threading.Lock()
        args = [
            dnsmasq_binary(), "--no-daemon", "--conf-file=/dev/null", "--interface=" + ns.tap,
            "--bind-interfaces", "--port=53", "--no-resolv", "--no-hosts", "--no-ping",
            "--dhcp-range=%s,%s,255.255.255.0,%d" % (low, high, LEASE_S),
            "--dhcp-option=option:router,192.0.2.1", "--dhcp-option=option:dns-server,192.0.2.1",
            "--dhcp-option=58,%d" % T1_S, "--dhcp-option=59,%d" % T2_S, "--dhcp-authoritative",
            "--address=/example.test/192.0.2.1", "--local=/test/",
            "--host-record=web.test,192.0.2.1", "--cname=alias.test,web.test", "--local-ttl=30",
            "--dhcp-leasefile=" + self.leasefile, "--pid-file=" + os.path.join(str(tmp), "dnsmasq.pid"),
            "--log-facility=-", "--log-dhcp", "--log-queries", "--user=root", "--group=root",
        ]
        self.proc = ns.popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        ready = False
        while not ready:
            line = read_line(self.proc.stderr, deadline)
            if line is None:
                break
            self.lines.append(line)
            ready = "DHCP, sockets bound exclusively to interface" in line
        if not ready:
            self.stop()
            raise AssertionError("dnsmasq did not start:\n" + "\n".join(self.lines))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = read_line(self.proc.stderr, deadline)
            if line is None:
                return
            with self._lock:
                self.lines.append(line)

    def log(self):
        with self._lock:
            return list(self.lines)

    def count(self, text):
        return sum(1 for line in self.log() if text in line)

    def wait_log(self, text, count=1, timeout_s=5.0):
        """Poll (bounded) until `text` appeared `count` times in the log."""
        deadline = time.monotonic() + timeout_s
        while self.count(text) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count(text) >= count

    def leases(self):
        try:
            with open(self.leasefile) as f:
                return [line.split() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_lease(self, predicate, timeout_s=5.0):
        deadline = time.monotonic() + timeout_s
        while True:
            found = [lease for lease in self.leases() if predicate(lease)]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def wait_no_lease(self, mac, timeout_s=5.0):
        """Poll (bounded) until the lease file has no lease for mac."""
        deadline = time.monotonic() + timeout_s
        while any(lease[1] == mac for lease in self.leases()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with open(self.logfile, "w") as f:
            f.write("\n".join(self.log()) + "\n")

    def diag(self):
        return "--- dnsmasq log ---\n%s\n--- leases ---\n%r" % ("\n".join(self.log()), self.leases())


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


@pytest.fixture
def dnsmasq(ns, tmp_path):
    d = Dnsmasq(ns, tmp_path)
    yield d
    d.stop()


class EchoServer:
    """TCP on LINUX_IP:PORT in ns: one connection, answers b"echo:" + what it read up to "\\n"."""

    def __init__(self, ns):
        self.peer = None
        self.error = None
        self.sock = ns.call(socket.create_server, (LINUX_IP, PORT))
        self.sock.settimeout(20)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, self.peer = self.sock.accept()
            with conn:
                conn.settimeout(10)
                data = b""
                for _ in range(64):
                    if data.endswith(b"\n"):
                        break
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"echo:" + data)
        except OSError as exc:
            self.error = repr(exc)

    def close(self):
        self.sock.close()
        self.thread.join(5)


def in_range(addr):
    a = ipv4.aton(addr) if isinstance(addr, str) else addr
    return a[:3] == b"\xc0\x00\x02" and 50 <= a[3] <= 99


def test_dhcp_lease_renewal_and_release(ns, dnsmasq):
    def body():
        events = []
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev)
            stack.trace = lambda e, t, d: events.append((time.monotonic(), e, d))
            client = DhcpClient(stack, hostname="tcpip-cpython")
            t0 = time.monotonic()
            bound = client.run(10000)
            took = time.monotonic() - t0
            first = dict(addr=client.addr, prefix=client.prefix_len, gateway=client.gateway,
                         dns=list(stack.dns_servers), route=stack.route.addr,
                         lease=(client.lease_s, client.t1_s, client.t2_s), state=client.state_name())
            leases_after_ack = dnsmasq.wait_lease(lambda lease: lease[1] == mac_text(dev.mac))
            # T1 (3 s): a unicast REQUEST to the server, acknowledged: BOUND again, renew counted
            c = stack.counters
            renewed = stack.run_until(lambda: c.dhcp_renew == 1 and client.state == tdhcp.BOUND, 6000)
            renew_s = time.monotonic() - t0
            leases_after_renew = dnsmasq.wait_lease(
                lambda lease: lease[1] == mac_text(dev.mac) and int(lease[0]) > int(leases_after_ack[0][0]))
            client.release()
            stack.poll()
            return dict(bound=bound, took=took, first=first, mac=mac_text(dev.mac), renewed=renewed,
                        renew_s=renew_s, after_ack=leases_after_ack, after_renew=leases_after_renew,
                        counters=c.nonzero(), events=events, released_state=client.state_name(),
                        route_after_release=stack.route.addr)

    r = ns.call(body, timeout=30)
    diag = "%r\n%s" % (r, dnsmasq.diag())
    assert r["bound"] and r["took"] < 3, diag
    f = r["first"]
    assert in_range(f["addr"]) and f["route"] == f["addr"], diag
    assert f["prefix"] == 24 and f["gateway"] == ipv4.aton(LINUX_IP), diag
    assert f["dns"] == [ipv4.aton(LINUX_IP)], diag
    assert f["lease"] == (LEASE_S, T1_S, T2_S) and f["state"] == "BOUND", diag
    # dnsmasq's lease file: "<expiry> <mac> <ip> <hostname> <client-id>"
    lease = r["after_ack"]
    assert len(lease) == 1, diag
    assert lease[0][2] == ipv4.ntoa(f["addr"]) and lease[0][3] == "tcpip-cpython", diag
    assert lease[0][4] == "01:" + r["mac"], diag
    # the renewal: at T1, unicast, acknowledged, and dnsmasq moved the lease's expiry
    assert r["renewed"] and T1_S - 0.2 <= r["renew_s"] <= T1_S + 1.5, diag
    assert r["after_renew"], diag
    c = r["counters"]
    assert c["dhcp_renew"] == 1 and c["dhcp_ack"] == 2 and c.get("dhcp_rebind", 0) == 0, diag
    assert dnsmasq.wait_log("DHCPACK(tap0) " + ipv4.ntoa(f["addr"]), count=2), diag
    assert dnsmasq.count("DHCPREQUEST(tap0) " + ipv4.ntoa(f["addr"])) == 2, diag
    assert dnsmasq.count("DHCPDISCOVER(tap0)") == 1, diag
    # release: DHCPRELEASE logged, lease gone from dnsmasq, our stack unconfigured
    assert r["released_state"] == "STOPPED" and r["route_after_release"] == b"\x00\x00\x00\x00", diag
    assert dnsmasq.wait_log("DHCPRELEASE(tap0) " + ipv4.ntoa(f["addr"])), diag
    assert dnsmasq.wait_no_lease(r["mac"]), diag
    dhcp_events = [e[2] for e in r["events"] if e[1] == "dhcp"]
    assert "state RENEWING" in dhcp_events, diag


def test_nak_after_the_server_changes_its_range(ns, tmp_path):
    # dnsmasq restarted with another range and no lease file: our renewal at T1 is refused (NAK),
    # we start again from INIT and lease an address in the new range
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Dnsmasq(ns, tmp_path / "a")
    dev = ns.call(TapDevice, ns.tap)
    second = None
    try:
        stack = Stack(dev)
        client = DhcpClient(stack, hostname="tcpip-nak")
        bound = client.run(10000)
        old = client.addr
        first.stop()
        second = Dnsmasq(ns, tmp_path / "b", low="192.0.2.100", high="192.0.2.109")
        c = stack.counters
        ok = stack.run_until(lambda: c.dhcp_nak >= 1 and client.state == tdhcp.BOUND, 10000)
        diag = "%r %r %r\n%s\n%s" % (bound, old, c.nonzero(), first.diag(), second.diag())
        assert bound and in_range(old) and ok, diag
        assert 100 <= client.addr[3] <= 109 and stack.route.addr == client.addr, diag
        assert c.dhcp_renew == 1 and c.dhcp_nak == 1 and c.dhcp_ack == 2, diag
        assert second.wait_log("DHCPNAK(tap0) " + ipv4.ntoa(old)), diag
        assert second.wait_log("DHCPACK(tap0) " + ipv4.ntoa(client.addr)), diag
        assert second.count("DHCPNAK(tap0)") == 1, diag
    finally:
        if second is not None:
            second.stop()
        dev.close()


def test_dns_and_a_tcp_connection_by_name(ns, dnsmasq):
    server = EchoServer(ns)

    def body():
        with TapDevice(ns.tap) as dev:
            stack = Stack(dev)
            client = DhcpClient(stack, hostname="tcpip-dns")
            assert client.run(10000)
            resolver = Resolver(stack)  # servers from DHCP: stack.dns_servers
            resolver.install()
            tsocket.set_default_stack(stack)
            c = stack.counters
            out = {"addr": ipv4.ntoa(client.addr)}
            try:
                out["example"] = tsocket.getaddrinfo("example.test", PORT)
                out["alias"] = ipv4.ntoa(resolver.resolve("ALIAS.test"))
                try:
                    resolver.resolve("nosuch.test")
                    out["nosuch"] = "resolved?"
                except OSError as e:
                    out["nosuch"] = e.errno
                queries = c.dns_query
                out["again"] = ipv4.ntoa(resolver.resolve("example.test"))
                out["cached"] = (c.dns_query == queries, c.dns_cache_hit)
                ai = tsocket.getaddrinfo("example.test", PORT, 0, tsocket.SOCK_STREAM)[0]
                s = tsocket.socket(ai[0], ai[1], ai[2])
                s.settimeout(5)
                s.connect(ai[-1])
                s.write(b"hello by name\n")
                data = b""
                for _ in range(32):
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                out["echo"] = data
            finally:
                tsocket.set_resolver(None)
                tsocket.set_default_stack(None)
            out["counters"] = c.nonzero()
            return out

    try:
        r = ns.call(body, timeout=30)
    finally:
        server.close()
    diag = "%r\n%s" % (r, dnsmasq.diag())
    assert r["example"] == [(2, 1, 6, "", (LINUX_IP, PORT))], diag
    assert r["alias"] == LINUX_IP, diag  # a CNAME to web.test, then its A record
    assert r["nosuch"] == -2, diag
    assert r["again"] == LINUX_IP and r["cached"][0] and r["cached"][1] >= 1, diag
    assert r["echo"] == b"echo:hello by name\n", diag
    assert server.peer is not None and server.peer[0] == r["addr"] and server.error is None, diag
    assert dnsmasq.wait_log("config nosuch.test is NXDOMAIN"), diag
    assert dnsmasq.wait_log("config alias.test is <CNAME>"), diag
    assert dnsmasq.count("query[A] example.test from " + r["addr"]) == 1, diag  # then the cache
    c = r["counters"]
    assert c.get("dns_drop_malformed", 0) == 0 and c.get("udp_drop_bad_checksum", 0) == 0, diag


MP_SCRIPT = r"""
import sys
from udp_device import UdpFrameDevice
from tcpip import socket as tsocket
from tcpip.dhcp import DhcpClient
from tcpip.dns import Resolver
from tcpip.stack import Stack
from tcpip.wire import ipv4

stack = Stack(UdpFrameDevice(int(sys.argv[1])))
client = DhcpClient(stack, hostname="tcpip-mp")
print("bound", client.run(15000), client.state_name())
print("mac", ":".join("%02x" % b for b in stack.mac))
print("addr", ipv4.ntoa(stack.route.addr), stack.route.prefix_len)
print("gateway", ipv4.ntoa(stack.route.gateway))
print("dns", " ".join(ipv4.ntoa(d) for d in stack.dns_servers))
print("lease", client.lease_s, client.t1_s, client.t2_s)
resolver = Resolver(stack)
resolver.install()
tsocket.set_default_stack(stack)
ai = tsocket.getaddrinfo("example.test", int(sys.argv[2]))[0]
print("resolved", ai[-1][0], ai[-1][1])
try:
    resolver.resolve("nosuch.test")
    print("nosuch resolved")
except OSError as e:
    print("nosuch", e.args[0])
s = tsocket.socket()
s.settimeout(5)
s.connect(ai[-1])
s.write(b"hello from micropython\n")
data = b""
for _ in range(32):
    chunk = s.read(256)
    if not chunk:
        break
    data += chunk
s.close()
print("echo", data.decode().strip())
print("counters", " ".join("%s=%d" % kv for kv in sorted(stack.counters.nonzero().items())))
"""


def test_micropython_dhcp_and_dns_over_the_frame_bridge(ns, dnsmasq, tmp_path):
    try:
        mp = micropython_binary()
    except RuntimeError as exc:
        pytest.fail("needs the MicroPython unix port: %s" % exc, pytrace=False)
    script = tmp_path / "mp_dhcp_dns.py"
    script.write_text(MP_SCRIPT)
    server = EchoServer(ns)
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 60},
                             daemon=True)
    relay.start()
    try:
        proc = ns.run([mp, str(script), str(bridge.port), str(PORT)], check=False, timeout=40,
                      env=child_env(), cwd=ROOT)
    finally:
        stop.set()
        relay.join(5)
        bridge.close()
        server.close()
    diag = "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n%s" % (
        proc.returncode, proc.stdout, proc.stderr, dnsmasq.diag())
    assert proc.returncode == 0, diag
    got = {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        got[key] = rest
    assert got.get("bound") == "True BOUND", diag
    addr, prefix = got["addr"].split()
    assert in_range(addr) and prefix == "24", diag
    assert got["gateway"] == LINUX_IP and got["dns"] == LINUX_IP, diag
    assert got["lease"] == "%d %d %d" % (LEASE_S, T1_S, T2_S), diag
    assert got["resolved"] == "%s %d" % (LINUX_IP, PORT), diag
    assert got["nosuch"] == "-2", diag
    assert got["echo"] == "echo:hello from micropython", diag
    assert server.peer is not None and server.peer[0] == addr, diag
    lease = dnsmasq.wait_lease(lambda lease: lease[1] == got["mac"])
    assert lease and lease[0][2] == addr and lease[0][3] == "tcpip-mp", diag
