"""host_tools: pcap files, TAP device, test namespaces, tcpdump helper, UDP frame bridge.

The namespace tests need root, /dev/net/tun and iproute2; they make their own netns (192.0.2.0/24
inside it) and delete it afterwards. Every wait has a deadline.
"""
import io
import os
import shutil
import struct
import subprocess
import threading
import time

import pytest

from host_tools.netns import (TestNamespace, Tcpdump, child_env, list_namespaces, micropython_binary,
                              namespace_exists, read_line, sweep_stale_namespaces)
from host_tools.pcap import (MAGIC_NS, PcapReader, PcapTap, PcapWriter, parse_pcap, read_pcap)
from host_tools import tap
from host_tools.tap import TapDevice, interface_exists
from host_tools.bridge import FrameBridge
from host_tools.mp.udp_device import UdpFrameDevice

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX_IP = bytes([192, 0, 2, 1])
OUR_IP = bytes([192, 0, 2, 2])


def arp_request(mac, spa=OUR_IP, tpa=LINUX_IP):
    return bytearray(b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
                     + mac + spa + b"\x00" * 6 + tpa)


def is_arp_reply(frame, n, to_mac):
    return (n >= 42 and bytes(frame[12:14]) == b"\x08\x06" and bytes(frame[20:22]) == b"\x00\x02"
            and bytes(frame[0:6]) == to_mac and bytes(frame[28:32]) == LINUX_IP)


def exchange_arp(dev, timeout_s=3.0):
    """Send an ARP request for 192.0.2.1 from 192.0.2.2; return Linux's reply (bytes)."""
    req = arp_request(dev.mac)
    dev.send(req, len(req))
    buf = bytearray(2048)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dev.wait(50)
        n = dev.recv_into(buf)
        if n and is_arp_reply(buf, n, dev.mac):
            return bytes(buf[:n])
    raise AssertionError("no ARP reply within %s s" % timeout_s)


# ---- pcap ----

def test_pcap_header_bytes():
    f = io.BytesIO()
    w = PcapWriter(f)
    w.write(b"\x01\x02\x03", timestamp=1.5)
    data = f.getvalue()
    assert data[:24] == bytes.fromhex("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000")
    assert data[24:40] == struct.pack("<IIII", 1, 500000, 3, 3)
    assert data[40:] == b"\x01\x02\x03"


def test_pcap_round_trip(tmp_path):
    path = tmp_path / "rt.pcap"
    frames = [(1000.25, bytes(range(60))), (1000.5, b"\xaa" * 1514), (1001.0, b"")]
    with PcapWriter(str(path)) as w:
        for ts, fr in frames:
            w.write(fr, timestamp=ts)
    r = PcapReader(str(path))
    assert r.linktype == 1 and r.snaplen == 65535
    assert [(round(ts, 6), fr) for ts, fr in r] == frames
    assert read_pcap(path.read_bytes()) == r.packets


def test_pcap_snaplen_truncates_and_reader_variants():
    f = io.BytesIO()
    PcapWriter(f, snaplen=4).write(b"abcdefgh", timestamp=2.0)
    assert read_pcap(f.getvalue()) == [(2.0, b"abcd")]
    # big-endian, nanosecond file
    be = struct.pack(">IHHiIII", MAGIC_NS, 2, 4, 0, 0, 65535, 1) + struct.pack(">IIII", 3, 250000000, 2, 2) + b"xy"
    assert read_pcap(be) == [(3.25, b"xy")]
    # a file still being written: the truncated last record is left out
    linktype, _, pkts, used = parse_pcap(be[:-1], partial_ok=True)
    assert linktype == 1 and pkts == [] and used == 24
    with pytest.raises(ValueError):
        parse_pcap(be[:-1])
    with pytest.raises(ValueError):
        parse_pcap(b"\x00" * 24)


class _FakeDevice:
    mac = b"\x02\x00\x00\x00\x00\x01"
    mtu = 1500

    def __init__(self, incoming):
        self.incoming = list(incoming)
        self.sent = []

    def recv_into(self, buf):
        if not self.incoming:
            return 0
        fr = self.incoming.pop(0)
        buf[:len(fr)] = fr
        return len(fr)

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))

    def extra(self):
        return "passed through"


def test_pcap_tap_records_both_directions():
    f = io.BytesIO()
    dev = PcapTap(_FakeDevice([b"in-frame-1"]), PcapWriter(f))
    buf = bytearray(64)
    assert dev.recv_into(buf) == 10 and dev.recv_into(buf) == 0
    dev.send(bytearray(b"out-frame-and-junk"), 9)
    assert dev.device.sent == [b"out-frame"]
    assert [fr for _, fr in read_pcap(f.getvalue())] == [b"in-frame-1", b"out-frame"]
    assert dev.mac == _FakeDevice.mac and dev.mtu == 1500 and dev.wait(0) is True
    assert dev.extra() == "passed through"


def test_pcap_file_readable_by_tshark_or_tcpdump(tmp_path):
    path = str(tmp_path / "arp.pcap")
    with PcapWriter(path) as w:
        w.write(arp_request(b"\x02\x11\x22\x33\x44\x55"), timestamp=1700000000.0)
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "arp.src.proto_ipv4",
                              "-e", "arp.dst.proto_ipv4"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["192.0.2.2", "192.0.2.1"]
    elif shutil.which("tcpdump"):
        out = subprocess.run(["tcpdump", "-n", "-r", path], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "Request who-has 192.0.2.1 tell 192.0.2.2" in out.stdout
    else:
        pytest.skip("neither tshark nor tcpdump installed")


# ---- namespaces, TAP, tcpdump, bridge (root) ----

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"),
    reason="needs root, /dev/net/tun and iproute2")


@pytest.fixture
def ns():
    with TestNamespace(routes=["blackhole 198.51.100.1/32", "unreachable 198.51.100.2/32"]) as space:
        yield space


@needs_root
def test_namespace_setup_and_cleanup(ns):
    assert namespace_exists(ns.name) and ns.name in list_namespaces()
    addrs = ns.run(["ip", "-4", "addr", "show", "dev", "tap0"]).stdout
    assert "inet 192.0.2.1/24" in addrs
    routes = ns.run(["ip", "route"]).stdout
    assert "blackhole 198.51.100.1" in routes and "unreachable 198.51.100.2" in routes
    assert ns.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
    assert ns.run(["cat", "/proc/sys/net/ipv6/conf/tap0/disable_ipv6"]).stdout.strip() == "1"
    assert "UP" in ns.run(["ip", "link", "show", "lo"]).stdout
    assert len(ns.linux_mac) == 6
    name = ns.name
    ns.close()
    assert not namespace_exists(name)


@needs_root
def test_namespace_deleted_on_exception_and_children_ended():
    holder = {}
    with pytest.raises(RuntimeError, match="boom"):
        with TestNamespace() as space:
            holder["name"] = space.name
            holder["proc"] = space.popen(["sleep", "30"])
            raise RuntimeError("boom")
    assert not namespace_exists(holder["name"])
    assert holder["proc"].poll() is not None


@needs_root
def test_sweep_removes_only_namespaces_of_dead_processes():
    gone = subprocess.Popen(["true"])
    gone.wait(10)
    stale = "tcpip-%d-dead00" % gone.pid
    live = "tcpip-%d-live00" % os.getpid()
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=10)
    subprocess.run(["ip", "netns", "add", live], check=True, timeout=10)
    try:
        removed = sweep_stale_namespaces()
        assert stale in removed and not namespace_exists(stale)
        assert live not in removed and namespace_exists(live)
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@needs_root
def test_enter_moves_only_this_thread_and_back(ns):
    def my_netns():
        return os.stat("/proc/thread-self/ns/net").st_ino

    home = my_netns()
    inside = ns.call(my_netns)
    assert inside != home
    with ns.enter():
        assert my_netns() == inside and interface_exists("tap0")
    assert my_netns() == home


@needs_root
def test_tap_arp_exchange_with_linux(ns, tmp_path):
    dev = ns.call(TapDevice, "tap0")
    try:
        pcap_path = str(tmp_path / "tap.pcap")
        with PcapWriter(pcap_path) as w:
            reply = exchange_arp(PcapTap(dev, w))
        assert reply[6:12] == ns.linux_mac and reply[22:28] == ns.linux_mac
        assert reply[38:42] == OUR_IP and reply[32:38] == dev.mac
        assert dev.tx_frames == 1 and dev.rx_frames >= 1
        frames = [fr for _, fr in read_pcap(pcap_path)]
        assert frames[0] == bytes(arp_request(dev.mac)) and reply in frames
        assert dev.recv_into(bytearray(2048)) == 0  # non-blocking when nothing waits
        assert dev.wait(0) is False
    finally:
        dev.close()


@needs_root
def test_tap_attach_waits_until_kernel_can_answer(ns):
    """Linux applies the carrier-on of an attach through linkwatch, up to 1 s later (sooner for the
    first change, later for quick re-attaches); until then its replies to us are dropped. Each
    re-attach here must get the reply to its single first request, at once."""
    for _ in range(4):
        dev = ns.call(TapDevice, "tap0")
        try:
            assert dev.ready_ms is not None and dev.ready_ms < 2000
            assert ns.call(tap.interface_flags, "tap0") & tap.IFF_RUNNING
            exchange_arp(dev, timeout_s=0.5)
        finally:
            dev.close()


@needs_root
def test_tap_attach_missing_and_create(ns):
    with pytest.raises(OSError):
        ns.call(TapDevice, "tapnone")
    dev = ns.call(TapDevice, "tap7", create=True)
    assert ns.call(interface_exists, "tap7")
    dev.close()
    assert not ns.call(interface_exists, "tap7")  # not persistent: gone with the fd


@needs_root
def test_tcpdump_captures_arp_exchange(ns, tmp_path):
    dev = ns.call(TapDevice, "tap0")
    path = str(tmp_path / "td.pcap")
    try:
        with Tcpdump(ns, bpf="arp", path=path) as td:
            exchange_arp(dev)
            got = td.wait_for(2, timeout_s=5)
            assert len(got) == 2
        pkts = td.stop()
    finally:
        dev.close()
    assert bytes(arp_request(dev.mac)) == pkts[0][1]
    assert is_arp_reply(pkts[1][1], len(pkts[1][1]), dev.mac)
    assert pkts[0][0] <= pkts[1][0]
    assert [fr for _, fr in read_pcap(path)] == [fr for _, fr in pkts]


@needs_root
def test_bridge_cli_relays_both_ways_for_cpython_device(ns, tmp_path):
    pcap_path = str(tmp_path / "bridge.pcap")
    bridge = ns.popen(ns.python_argv("-m", "host_tools.bridge", "--tap", "tap0", "--duration", "60",
                                     "--pcap", pcap_path),
                      env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = read_line(bridge.stdout, time.monotonic() + 10)
    assert line is not None, bridge.stderr.read()
    port = int(line)
    dev = ns.call(UdpFrameDevice, port)
    try:
        reply = exchange_arp(dev)
        assert reply[6:12] == ns.linux_mac
        assert dev.tx_frames == 1 and dev.rx_frames >= 1 and dev.rx_dropped == 0
        # a receive buffer smaller than the slot takes the copying path
        req = arp_request(dev.mac)
        dev.send(req, len(req))
        small = bytearray(64)
        deadline = time.monotonic() + 3
        n = 0
        while time.monotonic() < deadline and not (n and is_arp_reply(small, n, dev.mac)):
            dev.wait(50)
            n = dev.recv_into(small)
        assert n == 42 and is_arp_reply(small, n, dev.mac)
    finally:
        dev.close()
    bridge.terminate()
    out, err = bridge.communicate(timeout=10)
    assert bridge.returncode == 0, err
    assert b"hello=1" in err and b"from_peer=2" in err
    frames = [fr for _, fr in read_pcap(pcap_path)]
    assert frames[0] == bytes(arp_request(dev.mac)) and len(frames) >= 4


MP_SCRIPT = r"""
import gc, sys
from udp_device import UdpFrameDevice


def main():  # locals only: a new module global would grow the globals dict and count as allocation
    dev = UdpFrameDevice(int(sys.argv[1]))
    mac = dev.mac
    req = bytearray(b"\xff" * 6 + mac + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01" + mac
                    + bytes([192, 0, 2, 2]) + b"\x00" * 6 + bytes([192, 0, 2, 1]))
    for i in range(3):
        dev.send(req, len(req))
    print("SENT")  # the unix port writes stdout unbuffered
    sys.stdin.readline()  # the test has seen the bridge relay all three replies: they all wait now
    buf = bytearray(2048)
    lengths = []
    alloc = 0
    for i in range(100):
        if len(lengths) == 3:
            break
        dev.wait(50)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        n = dev.recv_into(buf)
        used = gc.mem_alloc() - before
        gc.enable()
        alloc = max(alloc, used)
        if n and buf[12] == 8 and buf[13] == 6 and buf[21] == 2 and buf[0:6] == mac:
            lengths.append(n)
    print("LENGTHS", " ".join(str(n) for n in lengths))
    print("ALLOC", alloc)
    print("COUNTERS", dev.rx_frames, dev.tx_frames, dev.rx_dropped)


main()
"""


@needs_root
def test_bridge_relays_both_ways_for_micropython_device(ns, tmp_path):
    try:
        mp = micropython_binary()
    except RuntimeError:
        pytest.skip("micropython unix port not installed")
    script = tmp_path / "mp_arp.py"
    script.write_text(MP_SCRIPT)
    bridge = ns.call(FrameBridge, "tap0")
    stop = threading.Event()
    server = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 60}, daemon=True)
    server.start()
    try:
        child = ns.popen([mp, str(script), str(bridge.port)], env=child_env(), cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert read_line(child.stdout, time.monotonic() + 10) == "SENT", child.stderr.read()
        deadline = time.monotonic() + 5
        while bridge.counters["to_peer"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # bounded poll of the bridge's counter
        assert bridge.counters["to_peer"] >= 3, bridge.counters
        out, err = child.communicate(b"go\n", timeout=20)
        assert child.returncode == 0, err.decode()
        lines = dict(line.split(" ", 1) for line in out.decode().splitlines())
        assert lines["LENGTHS"] == "42 42 42"  # three datagrams waiting, read as three frames
        assert lines["ALLOC"] == "0"  # recv_into allocates nothing with a slot-sized buffer
        assert lines["COUNTERS"].split()[1:] == ["3", "0"]
        assert bridge.counters["from_peer"] == 3 and bridge.counters["hello"] == 1
    finally:
        stop.set()
        server.join(5)
        bridge.close()


def test_demo_cleanup_survives_a_second_ctrl_c(monkeypatch, tmp_path):
    """An impatient second Ctrl-C (or SIGINT to the whole process group plus one to the demo) while
    the demo tears down must not stop the teardown: the namespace is deleted, the temp dir removed."""
    import signal
    from host_tools import demo

    made = []

    class FakeNamespace:
        name, tap = "fake", "tap0"

        def __init__(self):
            self.closed = False
            made.append(self)

        def create(self):
            raise KeyboardInterrupt  # the first Ctrl-C

        def close(self):
            os.kill(os.getpid(), signal.SIGINT)  # the second, in the middle of the teardown
            self.closed = True

    monkeypatch.setattr(demo, "TestNamespace", FakeNamespace)
    monkeypatch.setattr(demo, "_check_prerequisites", lambda: [])
    monkeypatch.setattr(demo.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "demo"))
    os.mkdir(str(tmp_path / "demo"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        rc = demo.main()
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped from the demo's teardown")
    assert rc == 130
    assert made and made[0].closed
    assert not os.path.exists(str(tmp_path / "demo"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cli_micropython_cleanup_survives_a_second_ctrl_c(monkeypatch, tmp_path):
    """A Ctrl-C arriving while the CLI ends its micropython child and bridge must not stop the
    cleanup: the temporary file for what the child received is removed all the same."""
    import signal
    from host_tools import bridge, cli, netns

    class FakeBridge:
        port = 9
        link = None

        def __init__(self, *args, **kwargs):
            pass

        def serve(self, stop_event=None, duration=None):
            stop_event.wait(duration)

        def close(self):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C again, in the middle of the cleanup

    child = tmp_path / "fake-micropython"
    child.write_text("#!/bin/sh\ncat >/dev/null\n")  # reads its config, exits without a result
    child.chmod(0o755)
    monkeypatch.setattr(bridge, "FrameBridge", FakeBridge)
    monkeypatch.setattr(netns, "micropython_binary", lambda: str(child))
    up = tmp_path / "up.bin"
    up.write_bytes(b"x" * 100)
    args = cli.build_parser().parse_args(["connect", "192.0.2.1", "9", "--tap", "tap0", "--addr",
                                          "192.0.2.2/24", "--send-file", str(up), "--runtime",
                                          "micropython"])
    reporter = cli.Reporter(args, out=io.StringIO())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        error = cli.run_micropython(args, reporter)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped from the CLI's cleanup")
    assert "without a result" in error
    assert reporter.recv_temp is not None and not os.path.exists(reporter.recv_temp)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cli_says_a_tap_in_use_is_busy_not_missing(capsys):
    """A TAP another process holds (EBUSY) exists: the CLI must not tell the user to create it."""
    import errno
    from host_tools import cli

    args = cli.build_parser().parse_args(["connect", "192.0.2.1", "9", "--tap", "tap0", "--addr",
                                          "192.0.2.2/24"])

    def busy():
        raise OSError(errno.EBUSY, "Device or resource busy")

    with pytest.raises(SystemExit) as exit_info:
        cli._open_tap_or_exit(args, busy)
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "in use" in err and "Create it first" not in err


@needs_root
def test_tap_send_on_a_down_interface_is_dropped_and_counted(ns):
    """Linux refuses writes to a TAP that is down (EIO). Like UdpFrameDevice and a NIC whose link is
    down, TapDevice drops the frame and counts it: an OSError from send() would escape from
    stack.poll() (an ARP reply or an ACK sent while someone runs `ip link set tap0 down`)."""
    dev = ns.call(TapDevice, "tap0")
    try:
        ns.run(["ip", "link", "set", "dev", "tap0", "down"])
        frame = arp_request(dev.mac)
        dev.send(frame, len(frame))  # must not raise
        assert dev.tx_dropped == 1 and dev.tx_frames == 0
        ns.run(["ip", "link", "set", "dev", "tap0", "up"])
        dev.send(frame, len(frame))
        assert dev.tx_frames == 1
    finally:
        dev.close()
