"""Path MTU discovery against real Linux routing (RFC 1191; docs/ARCHITECTURE.md, "Path MTU").

Two private namespaces: A holds the TAP (tap0, 192.0.2.1/24; the stack at 192.0.2.2 behind it) and
routes (ip_forward=1) over a veth pair whose A end has MTU 576 (198.51.100.1/24) to B, where a
Python server listens on 198.51.100.2 (B's end keeps MTU 1500, so the server's SYN-ACK offers MSS
1460). The stack's 1500-byte datagrams (DF) cannot cross A's 576-byte link: Linux's forwarding
drops them and answers with real ICMP fragmentation-needed messages (next-hop MTU 576), which
must bring the stack's segments down to 536 bytes and the whole upload through, byte for byte.
Only the two namespaces' own interfaces are made or touched (deleting the namespaces removes the
veth pair); every wait has a deadline. Needs root, /dev/net/tun, iproute2 and tcpdump; the
MicroPython case needs the unix port (a missing piece fails the test, never skips it).
"""
import hashlib
import json
import os
import queue
import socket
import threading
import time

import pytest

from host_tools.netns import TestNamespace, Tcpdump, child_env, micropython_binary
from realpeer import payload, require_environment, sha

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX_IP = "192.0.2.1"           # A, on the TAP: the stack's gateway
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
ROUTER_LINK_ADDR = "198.51.100.1/24"  # A's end of the narrow link
SERVER_ADDR = "198.51.100.2/24"      # B's end
SERVER_IP = "198.51.100.2"
LINK_MTU = 576
PATH_MSS = LINK_MTU - 40
FIRST_FLIGHT = 10 * 1460  # the most the stack can send before any data is acknowledged (IW 10)
UPLOAD = 64 * 1024


@pytest.fixture(scope="module", autouse=True)
def real_peer_environment():
    require_environment("path MTU real-peer tests", tools=("ip", "tcpdump"))


@pytest.fixture
def path():
    """(A, B): the router with the TAP, and the server's namespace, joined by a 576-byte link."""
    with TestNamespace() as a:
        # B's own TAP (required by TestNamespace) stays unused, its address on a network nobody routes
        with TestNamespace(tap="tap9", linux_addr="203.0.113.1/24", ip_forward=False) as b:
            a.ip("link", "add", "pmtu-a", "type", "veth", "peer", "name", "pmtu-b", "netns", b.name)
            a.ip("addr", "add", ROUTER_LINK_ADDR, "dev", "pmtu-a")
            a.ip("link", "set", "dev", "pmtu-a", "mtu", str(LINK_MTU), "up")
            b.ip("addr", "add", SERVER_ADDR, "dev", "pmtu-b")
            b.ip("link", "set", "dev", "pmtu-b", "up")
            b.ip("route", "add", "192.0.2.0/24", "via", ROUTER_LINK_ADDR.split("/")[0])
            yield a, b


class UploadServer:
    """One connection on SERVER_IP:port in ns: read to EOF (hashing), then send back one line
    "<bytes> <sha256>\\n" and close. result() -> dict(received, received_sha256, error)."""

    def __init__(self, ns, port, limit_s=60.0):
        self.limit_s = limit_s
        self.results = queue.Queue()
        self.sock = ns.call(socket.create_server, (SERVER_IP, port))
        self.sock.settimeout(limit_s)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        res = {"received": 0, "received_sha256": None, "error": None}
        try:
            conn, _ = self.sock.accept()
        except OSError as exc:
            res["error"] = "accept: %r" % exc
            self.results.put(res)
            return
        deadline = time.monotonic() + self.limit_s
        h = hashlib.sha256()
        with conn:
            conn.settimeout(self.limit_s)
            try:
                while time.monotonic() < deadline:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    h.update(chunk)
                    res["received"] += len(chunk)
                res["received_sha256"] = h.hexdigest()
                conn.sendall(b"%d %s\n" % (res["received"], res["received_sha256"].encode()))
            except OSError as exc:
                res["error"] = "server: %r" % exc
        self.results.put(res)

    def result(self, timeout_s=15):
        try:
            return self.results.get(timeout=timeout_s)
        except queue.Empty:
            return {"error": "server gave no result within %s s" % timeout_s}

    def close(self):
        self.sock.close()
        self.thread.join(5)


def run_upload(ns, port, up, runtime, timeout=60):
    """`connect --send-file --json` to SERVER_IP through A -> (exit code, result dict, diagnostics)."""
    argv = ns.python_argv("-m", "host_tools", "connect", SERVER_IP, str(port), "--send-file", str(up),
                          "--timeout", "30", "--tap", ns.tap, "--addr", STACK_ADDR, "--gateway",
                          LINUX_IP, "--runtime", runtime, "--json")
    proc = ns.run(argv, check=False, timeout=timeout, env=child_env(), cwd=ROOT)
    diag = "CLI exit %s\n--- stderr ---\n%s" % (proc.returncode, proc.stderr[-4000:])
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    assert lines, "CLI printed nothing on stdout\n" + diag
    res = json.loads(lines[-1])
    brief = {k: res.get(k) for k in ("result", "ended", "exchange_error", "sent", "counters")}
    diag += "\n--- result ---\n" + json.dumps(brief, indent=1, sort_keys=True)
    return proc.returncode, res, diag


def segments_from(frames, src_ip):
    """(relative seq from the first data byte, payload length) of each IPv4/TCP frame from src_ip
    that carries data, in capture order (the SYN sets the base)."""
    out = []
    isn = None
    for _, f in frames:
        if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6 or socket.inet_ntoa(f[26:30]) != src_ip:
            continue
        ihl = (f[14] & 15) * 4
        t = 14 + ihl
        seq = int.from_bytes(f[t + 4:t + 8], "big")
        if f[t + 13] & 2:  # SYN
            isn = seq
            continue
        n = int.from_bytes(f[16:18], "big") - ihl - (f[t + 12] >> 4) * 4
        if n > 0 and isn is not None:
            out.append(((seq - isn - 1) & 0xFFFFFFFF, n))
    return out


def is_our_fin(f):
    return (len(f) >= 54 and f[12:14] == b"\x08\x00" and f[23] == 6
            and socket.inet_ntoa(f[26:30]) == STACK_IP and f[14 + (f[14] & 15) * 4 + 13] & 1)


def frag_needed_mtus(frames):
    """The next-hop MTU of each ICMP fragmentation needed (type 3 code 4) in frames."""
    out = []
    for _, f in frames:
        if len(f) >= 42 and f[12:14] == b"\x08\x00" and f[23] == 1:
            i = 14 + (f[14] & 15) * 4
            if f[i] == 3 and f[i + 1] == 4:
                out.append(int.from_bytes(f[i + 6:i + 8], "big"))
    return out


@pytest.mark.parametrize("runtime", ("cpython", "micropython"))
def test_upload_over_a_576_byte_link_finds_the_path_mtu(path, runtime, tmp_path):
    if runtime == "micropython":
        try:
            micropython_binary()
        except RuntimeError as exc:
            pytest.fail("--runtime micropython needs the MicroPython unix port: %s" % exc, pytrace=False)
    a, b = path
    data = payload(UPLOAD, seed=41)
    up = tmp_path / "up.bin"
    up.write_bytes(data)
    port = 7301
    server = UploadServer(b, port)
    try:
        # headers only (the sizes come from the IPv4 total length): a small capture buffer keeps up
        with Tcpdump(a, iface=a.tap, bpf="tcp or icmp", snaplen=96) as tap_dump, \
                Tcpdump(b, iface="pmtu-b", bpf="tcp", snaplen=96) as far_dump:
            rc, res, diag = run_upload(a, port, up, runtime)
            srv = server.result()
            # the captures hold our FIN before they stop (bounded: the FIN went out long ago)
            tap_dump.wait_for(1, timeout_s=2, predicate=is_our_fin)
            far_dump.wait_for(1, timeout_s=2, predicate=is_our_fin)
        tap = tap_dump.stop()
        far = far_dump.stop()
    finally:
        server.close()
    ours_at_tap = segments_from(tap, STACK_IP)
    ours_at_server = segments_from(far, STACK_IP)
    mtus = frag_needed_mtus(tap)
    diag += "\nICMP frag-needed MTUs seen on tap0: %r\nour segments on tap0 (first 30): %r" % (
        mtus, ours_at_tap[:30])
    diag += "\ntcpdump: %s" % " | ".join(tap_dump.stderr_lines + far_dump.stderr_lines)
    counters = res["counters"]
    print("\n%s: %d frag-needed %r; pmtu reduced %s ignored %s; our segments at tap0 %d (%d over %d), "
          "at the server %d" % (runtime, len(mtus), sorted(set(mtus)), counters.get("tcp_pmtu_reduced"),
                                counters.get("tcp_pmtu_ignored"), len(ours_at_tap),
                                len([1 for _, n in ours_at_tap if n > PATH_MSS]), PATH_MSS,
                                len(ours_at_server)))
    # the upload arrived whole and exact, and the server's summary came back
    assert srv.get("error") is None, (srv, diag)
    assert rc == 0 and res["result"] == "connected" and res["exchange_error"] is None, diag
    assert srv["received"] == len(data) and srv["received_sha256"] == sha(data), (srv, diag)
    assert res["received"] == "%d %s\n" % (len(data), sha(data)), diag
    # Linux's forwarding refused our first full-sized segments with the link's MTU ...
    assert ours_at_tap and max(n for _, n in ours_at_tap) == 1460, diag
    assert mtus and set(mtus) == {LINK_MTU}, diag
    # ... and the stack took it: the MSS went to 536 at once (one decrease; the router's other
    # messages for the same flight were ignored), visible in its trace
    assert counters.get("tcp_pmtu_reduced") == 1, diag
    assert counters.get("tcp_pmtu_ignored", 0) == len(mtus) - 1, diag
    assert any(e["event"] == "pmtu" and e.get("detail") == PATH_MSS for e in res["events"]), diag
    # only the first flight (before any data could be acknowledged) went at 1460: every byte
    # beyond it went in segments of 536 or less, and so did everything the server's side saw
    assert all(seq + n <= FIRST_FLIGHT for seq, n in ours_at_tap if n > PATH_MSS), diag
    assert max(n for seq, n in ours_at_tap if seq >= FIRST_FLIGHT) == PATH_MSS, diag
    assert ours_at_server and max(n for _, n in ours_at_server) == PATH_MSS, diag
    assert sum(n for _, n in ours_at_server) >= len(data), diag
    # recovered by the ICMP, not by timeouts
    assert counters.get("tcp_rto_expired", 0) == 0, diag
