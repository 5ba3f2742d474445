"""Real-peer tests: the CLI (`python -m host_tools connect|serve --json`) against Linux.

Each test makes its own network namespace (host_tools.netns.TestNamespace: tap0 with 192.0.2.1/24 on
the Linux side, the stack at 192.0.2.2) and runs the CLI inside it with `ip netns exec`, as a user
would. Linux is the peer: a Python socket server in the namespace, its routing table (blackhole,
unreachable and prohibit routes for 198.51.100.x) and its ARP / ICMP behaviour. Needs root,
/dev/net/tun, iproute2 (ip, ss), tcpdump and ping (iputils-ping); a missing tool fails the tests that
need it with its name, never skips them.
Every wait has a deadline; the blackhole case takes ~15 s by design (SYNs at 0, 1, 3, 7 s).
"""
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from host_tools.netns import TestNamespace, Tcpdump, child_env, micropython_binary, read_line
from realpeer import missing_tool, require_environment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
BLACKHOLE_IP = "198.51.100.1"
UNREACHABLE_IP = "198.51.100.2"
PROHIBIT_IP = "198.51.100.3"
SILENT_ON_LINK_IP = "192.0.2.99"  # on-link, nobody answers ARP for it
RUNTIMES = ("cpython", "micropython")

# -- environment -------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def real_peer_environment():
    require_environment("real-peer tests", tools=("ip", "ss"))


def require_tool(tool):
    if not shutil.which(tool):
        pytest.fail("this test needs " + missing_tool(tool), pytrace=False)


def require_micropython():
    try:
        return micropython_binary()
    except RuntimeError as exc:
        pytest.fail("--runtime micropython needs the MicroPython unix port: %s" % exc, pytrace=False)


@pytest.fixture
def ns():
    routes = ["blackhole %s/32" % BLACKHOLE_IP, "unreachable %s/32" % UNREACHABLE_IP,
              "prohibit %s/32" % PROHIBIT_IP]
    with TestNamespace(routes=routes) as space:
        yield space


# -- the CLI -----------------------------------------------------------------------------------
def cli_argv(ns, command, *args, runtime="cpython"):
    argv = ns.python_argv("-m", "host_tools", command) + [str(a) for a in args]
    argv += ["--tap", ns.tap, "--addr", STACK_ADDR, "--runtime", runtime, "--json"]
    return argv


def describe(proc_or_rc, out, err):
    rc = getattr(proc_or_rc, "returncode", proc_or_rc)
    return "CLI exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (rc, out, err)


def parse_result(rc, out, err):
    lines = [line for line in (out or "").strip().splitlines() if line.strip()]
    assert lines, "CLI printed nothing on stdout\n" + describe(rc, out, err)
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise AssertionError("CLI's last stdout line is not JSON\n" + describe(rc, out, err))


def run_connect(ns, host, port, *args, runtime="cpython", timeout=60):
    """Run `connect --json` to completion -> (exit code, result dict, diagnostics text)."""
    argv = cli_argv(ns, "connect", host, port, *args, runtime=runtime)
    start = time.monotonic()
    proc = ns.run(argv, check=False, timeout=timeout, env=child_env(), cwd=ROOT)
    elapsed = time.monotonic() - start
    res = parse_result(proc.returncode, proc.stdout, proc.stderr)
    res["_elapsed_s"] = elapsed
    return proc.returncode, res, describe(proc, proc.stdout, proc.stderr)


class Server:
    """A TCP server on 192.0.2.1:port inside ns (its socket is made in the namespace), run by a thread.

    mode "hold-echo": accept one connection, report the peer, wait for release(), then read
    `expect` bytes and answer b"echo:" + them, and close. mode "accept-close": accept up to `count`
    connections, closing each at once. accepted: queue of (ip, port) peers.
    """

    def __init__(self, ns, port, mode, expect=0, count=1, limit_s=60.0):
        self.port = port
        self.mode = mode
        self.expect = expect
        self.count = count
        self.limit_s = limit_s
        self.accepted = queue.Queue()
        self.peers = []
        self.errors = []
        self.go = threading.Event()
        self.sock = ns.call(socket.create_server, (LINUX_IP, port), backlog=32)
        self.sock.settimeout(0.5)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def release(self):
        self.go.set()

    def _accept(self, deadline):
        while time.monotonic() < deadline:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            self.peers.append(peer)
            self.accepted.put(peer)
            return conn
        return None

    def _run(self):
        deadline = time.monotonic() + self.limit_s
        try:
            if self.mode == "hold-echo":
                conn = self._accept(deadline)
                if conn is None:
                    return
                with conn:
                    if not self.go.wait(max(0.0, deadline - time.monotonic())):
                        return
                    conn.settimeout(max(0.1, deadline - time.monotonic()))
                    data = b""
                    while len(data) < self.expect:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(b"echo:" + data)
            else:
                for _ in range(self.count):
                    conn = self._accept(deadline)
                    if conn is None:
                        return
                    conn.close()
        except OSError as exc:
            self.errors.append(exc)

    def close(self):
        self.go.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        s.close()


def established_lines(ns):
    return ns.run(["ss", "-tnH", "state", "established"]).stdout.splitlines()


def find_established(ns, local, peer, timeout_s=10.0):
    """Poll (bounded) the kernel's ESTABLISHED table for local <-> peer; returns (found, last lines)."""
    deadline = time.monotonic() + timeout_s
    lines = []
    while True:
        lines = established_lines(ns)
        for line in lines:
            cols = line.split()
            if local in cols and peer in cols:
                return True, lines
        if time.monotonic() >= deadline:
            return False, lines
        time.sleep(0.05)


# -- frames seen on the wire -------------------------------------------------------------------
def tcp_of(frame):
    """(src ip, dst ip, sport, dport, seq, flags) of an IPv4/TCP Ethernet frame, else None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 15) * 4
    t = 14 + ihl
    if len(frame) < t + 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", frame, t)
    return (socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]), sport, dport, seq,
            frame[t + 13])


def icmp_of(frame):
    """(type, code) of an IPv4/ICMP Ethernet frame, else None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 1:
        return None
    t = 14 + (frame[14] & 15) * 4
    return frame[t], frame[t + 1]


def syns_in(packets, dst):
    out = []
    for ts, frame in packets:
        seg = tcp_of(frame)
        if seg is not None and seg[1] == dst and seg[5] & 0x02 and not seg[5] & 0x10:
            out.append((ts, seg))
    return out


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_handshake_kernel_sees_our_4tuple_and_echo(ns, servers, runtime, tmp_path):
    if runtime == "micropython":
        require_micropython()
    message = "hello from tcpip\n"
    server = Server(ns, 7001, "hold-echo", expect=len(message))
    servers.append(server)
    pcap = str(tmp_path / "handshake.pcap")
    argv = cli_argv(ns, "connect", LINUX_IP, 7001, "--gateway", LINUX_IP, "--send", "hello from tcpip\\n",
                    "--timeout", "20", "--pcap", pcap, runtime=runtime)
    cli = ns.popen(argv, env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        try:
            peer = server.accepted.get(timeout=20)
        except queue.Empty:
            cli.kill()
            out, err = cli.communicate(timeout=10)
            raise AssertionError("the server accepted no connection\n" + describe(cli, out, err))
        # while the server holds the connection, the kernel lists exactly our 4-tuple as ESTABLISHED
        found, lines = find_established(ns, "%s:7001" % LINUX_IP, "%s:%d" % peer)
        assert peer[0] == STACK_IP
        assert found, "no ESTABLISHED %s:7001 <-> %s:%d in ss output:\n%s" % (LINUX_IP, peer[0], peer[1],
                                                                             "\n".join(lines))
        server.release()
        out, err = cli.communicate(timeout=40)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate(timeout=10)
    diag = describe(cli, out, err)
    res = parse_result(cli.returncode, out, err)
    assert cli.returncode == 0, diag
    assert res["result"] == "connected", diag
    assert res["runtime"] == runtime, diag
    assert res["local"] == "%s:%d" % peer, diag
    assert res["remote"] == "%s:7001" % LINUX_IP, diag
    assert res["received"] == "echo:" + message, diag
    assert res["ended"] == "peer-closed", diag
    assert res["syn_sent_ms"] == [0], diag
    assert res["rtt_ms"] is not None and 0 <= res["rtt_ms"] < 1000, diag
    assert isinstance(res["isn"], int) and 0 <= res["isn"] < 2 ** 32, diag
    assert 32768 <= peer[1] <= 60999, diag
    events = [e["event"] for e in res["events"]]
    for wanted in ("connect", "arp-request", "syn", "arp-resolved", "state"):
        assert wanted in events, diag
    assert not server.errors, server.errors
    # the pcap recorded the SYN with our ISN and port (PcapTap on cpython, the bridge on micropython)
    from host_tools.pcap import read_pcap
    syns = syns_in(read_pcap(pcap), LINUX_IP)
    assert len(syns) == 1, "SYNs in %s: %r" % (pcap, syns)
    assert syns[0][1][2] == peer[1] and syns[0][1][4] == res["isn"], (syns, diag)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_refused_port(ns, runtime):
    if runtime == "micropython":
        require_micropython()
    rc, res, diag = run_connect(ns, LINUX_IP, 7002, "--gateway", LINUX_IP, runtime=runtime)
    assert rc == 1, diag
    assert res["result"] == "ECONNREFUSED", diag
    assert res["syn_sent_ms"] == [0], diag
    assert res["counters"].get("tcp_connect_refused") == 1, diag
    assert res["_elapsed_s"] < 10, diag


def test_blackhole_syn_retries_on_the_wire(ns, tmp_path):
    require_tool("tcpdump")
    with Tcpdump(ns, bpf="tcp and dst host %s" % BLACKHOLE_IP, path=str(tmp_path / "blackhole.pcap")) as td:
        rc, res, diag = run_connect(ns, BLACKHOLE_IP, 80, "--gateway", LINUX_IP, "--syn-retries", "3",
                                    timeout=60)
        wire = syns_in(td.wait_for(4, timeout_s=5), BLACKHOLE_IP)
    assert rc == 1, diag
    assert res["result"] == "ETIMEDOUT", diag
    sent = res["syn_sent_ms"]
    assert len(sent) == 4, diag
    for got, want in zip(sent, (0, 1000, 3000, 7000)):
        assert abs(got - want) <= 150, "SYN at %s ms, expected %s ms\n%s" % (got, want, diag)
    # the stack gives up one doubled RTO (8 s) after the last SYN: ~15 s in all
    assert 14500 <= res["connect_ms"] <= 16000, diag
    assert 14.5 <= res["_elapsed_s"] <= 25, diag
    # on the wire: four SYNs from our port with our ISN, spaced 1, 2 and 4 s
    assert len(wire) == 4, "tcpdump saw %d SYNs: %r\n%s" % (len(wire), wire, diag)
    port = int(res["local"].rsplit(":", 1)[1])
    for _, seg in wire:
        assert seg[0] == STACK_IP and seg[2] == port and seg[3] == 80 and seg[4] == res["isn"], (seg, diag)
    t0 = wire[0][0]
    offsets = [round((ts - t0) * 1000) for ts, _ in wire]
    for got, want in zip(offsets, (0, 1000, 3000, 7000)):
        assert abs(got - want) <= 250, "wire SYN offsets %r ms, expected ~0/1000/3000/7000\n%s" % (offsets, diag)


@pytest.mark.parametrize("target,route,code", [(UNREACHABLE_IP, "unreachable", 1),
                                                (PROHIBIT_IP, "prohibit", 13)])
def test_icmp_unreachable_routes(ns, target, route, code):
    require_tool("tcpdump")
    with Tcpdump(ns, bpf="icmp") as td:
        rc, res, diag = run_connect(ns, target, 80, "--gateway", LINUX_IP, "--syn-retries", "3")
        icmp = [icmp_of(f) for _, f in td.wait_for(1, timeout_s=5)]
    assert rc == 1, diag
    assert res["result"] == "EHOSTUNREACH", diag
    assert res["syn_sent_ms"] == [0], diag  # no retransmission: the ICMP error ended it at once
    assert res["connect_ms"] < 1000 and res["_elapsed_s"] < 10, diag
    assert (3, code) in icmp, "Linux's %s route sent %r, expected type 3 code %d\n%s" % (route, icmp, code, diag)
    assert any(e["event"] == "icmp" and e["detail"] == "EHOSTUNREACH" for e in res["events"]), diag
    assert res["counters"].get("icmp_unreach_delivered") == 1, diag


def test_on_link_address_without_arp_answer(ns):
    rc, res, diag = run_connect(ns, SILENT_ON_LINK_IP, 80, "--gateway", LINUX_IP)
    assert rc == 1, diag
    assert res["result"] == "EHOSTUNREACH", diag
    assert 2800 <= res["connect_ms"] <= 3600, diag  # 3 ARP requests, 1 s apart
    requests = [e for e in res["events"] if e["event"] == "arp-request"]
    assert len(requests) == 3 and all(e["detail"] == SILENT_ON_LINK_IP for e in requests), diag
    assert any(e["event"] == "arp-failed" for e in res["events"]), diag
    assert res["counters"].get("arp_resolve_failed") == 1, diag


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_linux_pings_the_stack(ns, runtime):
    require_tool("ping")
    if runtime == "micropython":
        require_micropython()
    argv = cli_argv(ns, "serve", "--seconds", "60", runtime=runtime)
    proc = ns.popen(argv, env=child_env(), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    try:
        ready = read_line(proc.stdout, time.monotonic() + 20)
        if ready is None or not ready.startswith("ready"):
            proc.kill()
            out, err = proc.communicate(timeout=10)
            raise AssertionError("no ready line (got %r)\n%s" % (ready, describe(proc, out.decode(), err.decode())))
        ping = ns.run(["ping", "-c", "3", "-W", "1", "-i", "0.2", STACK_IP], check=False, timeout=30)
        out, err = proc.communicate(timeout=20)  # closes stdin: serve ends and prints its counters
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    diag = describe(proc, out.decode(), err.decode())
    assert ping.returncode == 0, "ping failed:\n%s\n%s\n%s" % (ping.stdout, ping.stderr, diag)
    assert "3 received" in ping.stdout, ping.stdout + diag
    assert proc.returncode == 0, diag
    res = parse_result(proc.returncode, out.decode(), err.decode())
    assert res["result"] == "served" and res["runtime"] == runtime, diag
    assert res["counters"].get("icmp_echo_reply_sent", 0) >= 3, diag
    assert res["counters"].get("arp_reply_sent", 0) >= 1, diag


def test_twenty_connects_get_distinct_unpredictable_ports(ns, servers):
    server = Server(ns, 7003, "accept-close", count=20)
    servers.append(server)
    rc, res, diag = run_connect(ns, LINUX_IP, 7003, "--gateway", LINUX_IP, "--count", "20", timeout=90)
    assert rc == 0, diag
    assert res["count"] == 20 and res["connected"] == 20, diag
    conns = res["connections"]
    assert all(c["result"] == "connected" for c in conns), diag
    ports = [int(c["local"].rsplit(":", 1)[1]) for c in conns]
    assert len(set(ports)) == 20, "ports repeat: %r" % ports
    assert all(32768 <= p <= 60999 for p in ports), "ports outside 32768-60999: %r" % ports
    diffs = [b - a for a, b in zip(ports, ports[1:])]
    assert not all(d in (1, 2) for d in diffs), "sequential ports: %r" % ports
    assert len(set(diffs)) > 1, "ports in a fixed stride: %r" % ports
    assert len(set(c["isn"] for c in conns)) == 20, diag
    # the server saw the same 20 ports
    deadline = time.monotonic() + 5
    while len(server.peers) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(p for _, p in server.peers) == sorted(ports), (server.peers, ports)
