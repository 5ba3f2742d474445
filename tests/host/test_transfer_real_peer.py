"""Bulk transfers against Linux: `python -m host_tools connect --send-file/--recv-file --json` in a
private namespace (TestNamespace: tap0 with 192.0.2.1/24, the stack at 192.0.2.2), with a Python
socket server inside it and faults injected by the CLI's FaultLink (--drop-chance ...).

Every transfer is checked byte for byte on both sides: the server hashes what it read and what it
sent, the CLI reports the sha256 of what it sent and received, and --recv-file's file is read back.
Needs root, /dev/net/tun and iproute2; the MicroPython case needs the unix port. Every wait has a
deadline. Fault seeds are fixed, so a failure names the seed and the command that repeats it.
"""
import hashlib
import json
import os
import queue
import shutil
import socket
import threading
import time

import pytest

from host_tools.netns import TestNamespace, child_env, micropython_binary
from realpeer import payload, require_environment, sha

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
MB = 1000 * 1000
# 5% loss, reordering, duplication and some bit flips in both directions: what the 1 MB
# transfers go through
LOSSY = ("--drop-chance", "0.05", "--reorder-chance", "0.03", "--duplicate-chance", "0.02",
         "--corrupt-chance", "0.01")
BIG_RINGS = ("--rx-buffer", "32768", "--tx-buffer", "32768")


@pytest.fixture(scope="module", autouse=True)
def real_peer_environment():
    require_environment("real-peer tests")


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space



class TransferServer:
    """A TCP server on 192.0.2.1:port inside ns for one connection, run by threads.

    It reads until EOF (hashing what it gets) while a second thread sends `send` and then shuts
    down its sending side; with summary=True it sends, after the client's EOF, one line
    "<bytes> <sha256>\\n" of what it read instead. result() -> dict(received, received_sha256,
    sent, peer, error).
    """

    def __init__(self, ns, port, send=b"", summary=False, limit_s=60.0):
        self.send = send
        self.summary = summary
        self.limit_s = limit_s
        self.results = queue.Queue()
        self.sock = ns.call(socket.create_server, (LINUX_IP, port))
        self.sock.settimeout(limit_s)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        res = {"received": 0, "received_sha256": None, "sent": 0, "peer": None, "error": None}
        try:
            conn, res["peer"] = self.sock.accept()
        except OSError as exc:
            res["error"] = "accept: %r" % exc
            self.results.put(res)
            return
        deadline = time.monotonic() + self.limit_s
        got_eof = threading.Event()
        sender_error = []

        def sender():
            try:
                if self.send:
                    conn.sendall(self.send)
                    res["sent"] = len(self.send)
                if self.summary:
                    got_eof.wait(max(0.0, deadline - time.monotonic()))
                    line = b"%d %s\n" % (res["received"], (res["received_sha256"] or "").encode())
                    conn.sendall(line)
                conn.shutdown(socket.SHUT_WR)
            except OSError as exc:
                sender_error.append(exc)

        with conn:
            conn.settimeout(self.limit_s)
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            h = hashlib.sha256()
            n = 0
            try:
                while time.monotonic() < deadline:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    h.update(chunk)
                    n += len(chunk)
            except OSError as exc:
                res["error"] = "recv: %r" % exc
            res["received"] = n
            res["received_sha256"] = h.hexdigest()
            got_eof.set()
            t.join(max(0.0, deadline - time.monotonic()))
            if sender_error and res["error"] is None:
                res["error"] = "send: %r" % sender_error[0]
        self.results.put(res)

    def result(self, timeout_s=15):
        try:
            return self.results.get(timeout=timeout_s)
        except queue.Empty:
            return {"error": "server gave no result within %s s" % timeout_s}

    def close(self):
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        s.close()


def run_transfer(ns, port, *args, runtime="cpython", timeout=60):
    """`connect --json` to completion -> (exit code, result dict, wall seconds, diagnostics text)."""
    argv = ns.python_argv("-m", "host_tools", "connect", LINUX_IP, str(port)) + [str(a) for a in args]
    argv += ["--tap", ns.tap, "--addr", STACK_ADDR, "--gateway", LINUX_IP, "--runtime", runtime, "--json"]
    start = time.monotonic()
    proc = ns.run(argv, check=False, timeout=timeout, env=child_env(), cwd=ROOT)
    wall = time.monotonic() - start
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    command = "ip netns exec NS " + " ".join(argv[len(ns.exec_prefix):] if argv[0] == "ip" else argv)
    diag = "command: %s\nCLI exit %s after %.1f s\n--- stderr ---\n%s" % (
        command, proc.returncode, wall, proc.stderr[-4000:])
    assert lines, "CLI printed nothing on stdout\n" + diag
    try:
        res = json.loads(lines[-1])
    except ValueError:
        raise AssertionError("CLI's last stdout line is not JSON\n" + diag + "\n" + proc.stdout[-4000:])
    brief = {k: res.get(k) for k in ("result", "ended", "exchange_error", "final_state", "sent",
                                     "received_bytes", "throughput", "srtt_ms", "rtt_ms", "counters",
                                     "faults", "fault_seed", "elapsed_ms")}
    diag += "\n--- result ---\n" + json.dumps(brief, indent=1, sort_keys=True)
    tcp = dict((k, v) for k, v in (res.get("counters") or {}).items()
               if k.startswith("tcp_") and ("rexmit" in k or "retransmit" in k or "rto" in k
                                             or "dupack" in k or "ooo" in k or "order" in k))
    print("\n%s %s: %.1f s wall; srtt %s ms; throughput %s; faults %s; tcp %s" % (
        runtime, " ".join(str(a) for a in args), wall, res.get("srtt_ms"), json.dumps(res.get("throughput")),
        json.dumps(dict((k, v) for k, v in ((res.get("faults") or {}).get("counters") or {}).items()
                        if not isinstance(v, dict))), json.dumps(tcp)))
    return proc.returncode, res, wall, diag


def linux_checksum_errors(ns):
    """Linux's count of IPv4 and TCP datagrams it dropped for a bad checksum, in ns."""
    total = 0
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = ns.run(["cat", path]).stdout.splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            proto = names.split(":")[0]
            for k, v in zip(names.split()[1:], values.split()[1:]):
                if k == "InCsumErrors" and proto in ("Tcp", "IpExt"):
                    total += int(v)
    return total


def stack_checksum_drops(res):
    c = res["counters"]
    return c.get("ip_drop_bad_checksum", 0) + c.get("tcp_drop_bad_checksum", 0)


def assert_clean_end(rc, res, diag):
    assert rc == 0, diag
    assert res["result"] == "connected", diag
    assert res["ended"] == "peer-closed", diag
    assert res["exchange_error"] is None, diag


def assert_throughput(tp, direction, nbytes, diag):
    d = tp[direction]
    assert d["bytes"] == nbytes, diag
    assert d["seconds"] > 0 and d["mb_per_s"] > 0, diag
    # the reported rate is the bytes over the seconds (MB = 10**6 bytes), to its rounding
    assert abs(d["mb_per_s"] - nbytes / MB / d["seconds"]) <= 0.001 + d["mb_per_s"] * 0.01, diag


# -- CPython: 1 MB each way through 5% loss, reordering and duplication ---------------------------
def test_upload_1mb_through_lossy_link_is_byte_exact(ns, servers, tmp_path):
    data = payload(MB + 4321, seed=1)
    up = tmp_path / "up.bin"
    up.write_bytes(data)
    server = TransferServer(ns, 7101, summary=True)
    servers.append(server)
    pcap = tmp_path / "upload.pcap"
    rc, res, wall, diag = run_transfer(ns, 7101, "--send-file", up, "--timeout", "45", "--pcap", pcap,
                                       "--fault-seed", "1101", *(LOSSY + BIG_RINGS), timeout=70)
    diag += "\npcap: %s" % pcap
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    # what the server read is exactly the file, by its count and hash and by ours
    assert srv["received"] == len(data) and srv["received_sha256"] == sha(data), (srv, diag)
    assert res["sent"] == len(data) and res["sent_sha256"] == sha(data), diag
    # its summary line came back as the JSON's received text
    assert res["received"] == "%d %s\n" % (len(data), sha(data)), diag
    assert res["recv_file"] is None and res["received_bytes"] == len(res["received"]), diag
    assert res["throughput"]["send"]["complete"] is True, diag
    assert_throughput(res["throughput"], "send", len(data), diag)
    faults = res["faults"]
    assert res["fault_seed"] == 1101 and faults["seed"] == 1101, diag
    for kind in ("dropped", "reordered", "duplicated", "corrupted"):
        assert faults["counters"]["rx"][kind] > 0 and faults["counters"]["tx"][kind] > 0, diag
    assert res["counters"].get("tcp_rexmit", 0) > 0, diag
    # the bit flips we sent were caught by Linux's checksums (and resent by us)
    assert linux_checksum_errors(ns) > 0, diag


def test_download_1mb_through_lossy_link_to_recv_file(ns, servers, tmp_path):
    data = payload(MB + 1234, seed=2)
    server = TransferServer(ns, 7102, send=data)
    servers.append(server)
    down = tmp_path / "down.bin"
    pcap = tmp_path / "download.pcap"
    rc, res, wall, diag = run_transfer(ns, 7102, "--recv-file", down, "--timeout", "45", "--pcap", pcap,
                                       "--fault-seed", "1102", *(LOSSY + BIG_RINGS), timeout=70)
    diag += "\npcap: %s" % pcap
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    assert srv["sent"] == len(data), (srv, diag)
    got = down.read_bytes()
    assert len(got) == len(data) and got == data, "recv file differs: %d bytes, sha %s\n%s" % (
        len(got), sha(got), diag)
    assert res["received_bytes"] == len(data) and res["received_sha256"] == sha(data), diag
    assert res["recv_file"] == str(down) and res["received"] == "", diag
    assert_throughput(res["throughput"], "receive", len(data), diag)
    assert res["throughput"]["send"]["bytes"] == 0, diag
    counters = res["faults"]["counters"]
    for kind in ("dropped", "reordered", "duplicated", "corrupted"):
        assert counters["rx"][kind] > 0 and counters["tx"][kind] > 0, diag
    # the stack saw the faults: segments out of order were kept, bit flips caught by checksums
    assert res["counters"].get("tcp_ooo_queued", 0) > 0, diag
    assert 0 < stack_checksum_drops(res) <= counters["rx"]["corrupted"] + counters["rx"]["duplicated"], diag


# -- --recv-file without faults; throughput fields ---------------------------------------------------
def test_recv_file_holds_exactly_what_the_server_sent(ns, servers, tmp_path):
    data = payload(300 * 1000 + 7, seed=3)
    server = TransferServer(ns, 7103, send=data)
    servers.append(server)
    down = tmp_path / "exact.bin"
    rc, res, wall, diag = run_transfer(ns, 7103, "--recv-file", down, "--timeout", "20", timeout=40)
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    assert down.read_bytes() == data, diag
    assert res["received_bytes"] == len(data) and res["received_sha256"] == sha(data), diag
    assert_throughput(res["throughput"], "receive", len(data), diag)
    assert res["fault_seed"] is None and "faults" not in res, diag
    # the server saw our clean close: EOF after nothing sent
    assert srv["received"] == 0, srv


# -- MicroPython through the bridge: 100 KB each way at once, with faults -----------------------------
def test_micropython_100kb_each_way_through_faulty_bridge(ns, servers, tmp_path):
    try:
        micropython_binary()
    except RuntimeError as exc:
        pytest.fail("--runtime micropython needs the MicroPython unix port: %s" % exc, pytrace=False)
    up_data = payload(100 * 1000 + 11, seed=4)
    down_data = payload(100 * 1000 + 13, seed=5)
    up = tmp_path / "mp-up.bin"
    up.write_bytes(up_data)
    down = tmp_path / "mp-down.bin"
    server = TransferServer(ns, 7104, send=down_data)
    servers.append(server)
    pcap = tmp_path / "mp.pcap"
    rc, res, wall, diag = run_transfer(ns, 7104, "--send-file", up, "--recv-file", down, "--timeout", "40",
                                       "--pcap", pcap, "--fault-seed", "1104", "--delay-ms", "3",
                                       "--jitter-ms", "2", *(LOSSY + BIG_RINGS), runtime="micropython",
                                       timeout=80)
    diag += "\npcap: %s" % pcap
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    assert res["runtime"] == "micropython", diag
    assert srv["received"] == len(up_data) and srv["received_sha256"] == sha(up_data), (srv, diag)
    assert res["sent_sha256"] == sha(up_data), diag
    assert down.read_bytes() == down_data, diag
    assert res["received_sha256"] == sha(down_data), diag
    assert_throughput(res["throughput"], "send", len(up_data), diag)
    assert_throughput(res["throughput"], "receive", len(down_data), diag)
    assert res["throughput"]["send"]["complete"] is True, diag
    counters = res["faults"]["counters"]
    assert counters["dropped"] > 0 and counters["reordered"] > 0 and counters["duplicated"] > 0, diag
    # the bridge held frames for their delay (1 to 5 ms each way): the RTT shows it
    assert counters["delayed"] > 0 and res["srtt_ms"] >= 2, diag


def test_micropython_send_file_reply_comes_back_as_received_text(ns, servers, tmp_path):
    """Without --recv-file the child writes what it gets to a file of the CLI's, not hex lines."""
    try:
        micropython_binary()
    except RuntimeError as exc:
        pytest.fail("--runtime micropython needs the MicroPython unix port: %s" % exc, pytrace=False)
    data = payload(20 * 1000, seed=6)
    up = tmp_path / "mp-small.bin"
    up.write_bytes(data)
    server = TransferServer(ns, 7105, summary=True)
    servers.append(server)
    rc, res, wall, diag = run_transfer(ns, 7105, "--send-file", up, "--timeout", "20",
                                       runtime="micropython", timeout=50)
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    assert res["received"] == "%d %s\n" % (len(data), sha(data)), diag
    assert res["recv_file"] is None, diag
    assert not [e for e in res["events"] if e["event"] == "data"], diag


# -- a real RTT: RTO estimation -------------------------------------------------------------------------
RTT_DELAY_MS = 40


def add_delay(ns):
    """RTT_DELAY_MS on the frames Linux sends us: tc netem on tap0 when the kernel has it (returns
    ([], "netem")), else the fault link's delay on the same direction (returns (CLI options,
    "faultlink"): sch_netem is not built into every kernel, e.g. this workplace's)."""
    if shutil.which("tc"):
        proc = ns.run(["tc", "qdisc", "add", "dev", ns.tap, "root", "netem", "delay",
                       "%dms" % RTT_DELAY_MS], check=False)
        if proc.returncode == 0:
            return [], "netem"
    return ["--delay-ms", str(RTT_DELAY_MS), "--fault-direction", "rx", "--fault-seed", "1106"], "faultlink"


def test_srtt_follows_a_real_40ms_rtt_and_transfer_is_exact(ns, servers, tmp_path):
    delay_args, how = add_delay(ns)
    ring = 8192  # ~25 windows (RTT samples) in 200 KB: srtt forgets the handshake's sample
    data = payload(200 * 1000, seed=7)
    up = tmp_path / "rtt-up.bin"
    up.write_bytes(data)
    server = TransferServer(ns, 7106, summary=True)
    servers.append(server)
    rc, res, wall, diag = run_transfer(ns, 7106, "--send-file", up, "--timeout", "30", "--tx-buffer", ring,
                                       "--rx-buffer", ring, *delay_args, timeout=60)
    diag = "delay made by %s\n%s" % (how, diag)
    srv = server.result()
    assert srv.get("error") is None, (srv, diag)
    assert_clean_end(rc, res, diag)
    assert srv["received"] == len(data) and srv["received_sha256"] == sha(data), (srv, diag)
    assert res["received"] == "%d %s\n" % (len(data), sha(data)), diag
    # the handshake's sample runs from connect(), so it holds two delayed answers: Linux's ARP
    # reply (the stack starts with an empty cache) and its SYN-ACK
    assert 2 * RTT_DELAY_MS <= res["rtt_ms"] <= 2 * RTT_DELAY_MS + 25, diag
    # the data samples see one delay each (Linux ACKs every second segment at once), plus a few
    # ms of Python per frame on a busy machine
    assert RTT_DELAY_MS <= res["srtt_ms"] <= RTT_DELAY_MS + 15, diag
    # at most a send ring per RTT: the transfer cannot beat the delay
    assert res["throughput"]["send"]["seconds"] >= RTT_DELAY_MS / 1000 * (len(data) // ring - 1), diag
    assert res["counters"].get("tcp_rto_expired", 0) == 0, diag  # the measured RTO never fired
