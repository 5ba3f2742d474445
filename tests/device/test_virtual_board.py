"""The virtual boards: the MicroPython unix port running the firmware path (board file -> machine
shim -> chip driver -> Stack) against a chip model bridged to a TAP, with Linux as the peer.

Per board, in a fresh namespace each (tap0, Linux 192.0.2.1/24, the board 192.0.2.2):
  * the CLI (`python -m host_tools connect|serve --runtime virtual-...  --json`): connect and
    exchange data with a server, a refused port, Linux pings the board; the JSON carries the SPI
    counters (no wiring errors, transactions and bytes counted);
  * tests/device/board_script.py, the scenarios a real board runs (test_real_board.py), on the
    virtual board through virtual_runner.py: bring-up by tcpip.board, ping, echo, refused.
Boards: W5500-EVB-Pico (virtual-w5500), Pico + ENC28J60 (virtual-enc28j60), and the FIFO test board
(tests/device/fifo_*.py: a tiny chip that tests the plumbing apart from the real chip models).
Needs root, /dev/net/tun, ip, ping and the unix port, like tests/host/test_real_peer.py (missing
pieces fail the tests, never skip them). Each test takes a few seconds.
"""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import devicecase
from devicecase import EchoServer, check_scenarios, closed_port, drive, scenario_config
from host_tools.bridge import FrameBridge
from host_tools.netns import TestNamespace, child_env, micropython_binary, read_line
from listlink import ListLink
from realpeer import require_environment

ROOT = devicecase.ROOT
HERE = devicecase.HERE
LINUX_IP = "192.0.2.1"
STACK_ADDR = "192.0.2.2/24"
STACK_IP = "192.0.2.2"
# runtime -> (board file, chip, its driver and model files: those of the real chips must exist)
BOARDS = {
    "virtual-fifo": ("tests/device/fifo_board.py", "fifo", ()),
    "virtual-w5500": ("boards/w5500_evb_pico.py", "w5500",
                      ("lib/tcpip/drivers/w5500.py", "host_tools/mp/w5500_model.py")),
    "virtual-enc28j60": ("boards/pico_enc28j60.py", "enc28j60",
                         ("lib/tcpip/drivers/enc28j60.py", "host_tools/mp/enc28j60_model.py")),
}
RUNTIMES = sorted(BOARDS)
CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module", autouse=True)
def environment():
    require_environment("virtual-board tests", tools=("ip", "ping"), micropython=True)


def require_chip(runtime):
    missing = [p for p in BOARDS[runtime][2] if not os.path.exists(os.path.join(ROOT, p))]
    if missing:
        pytest.skip("%s: the chip's driver/model is not in this checkout yet: %s" % (
            runtime, ", ".join(missing)))


@pytest.fixture
def ns():
    with TestNamespace() as space:
        yield space


def cli_argv(ns, command, *args, runtime):
    # fifo_cli.py is the CLI with one more runtime (virtual-fifo); the real boards go through
    # `python -m host_tools` itself
    entry = ["tests/device/fifo_cli.py"] if runtime == "virtual-fifo" else ["-m", "host_tools"]
    return ns.python_argv(*entry) + [command] + [str(a) for a in args] + [
        "--tap", ns.tap, "--addr", STACK_ADDR, "--runtime", runtime, "--json"]


def describe(rc, out, err):
    return "CLI exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (rc, out, err)


def last_json(rc, out, err):
    lines = [line for line in (out or "").strip().splitlines() if line.strip()]
    assert lines, "CLI printed nothing\n" + describe(rc, out, err)
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise AssertionError("the CLI's last line is not JSON\n" + describe(rc, out, err))


def check_spi(res, runtime, diag):
    spi = res.get("spi")
    assert spi, "no spi counters in the JSON\n" + diag
    bus = spi["bus"]
    assert bus["wiring_errors"] == 0 and bus["errors"] == {}, diag
    assert bus["transactions"] > 0 and bus["bytes"] > bus["transactions"] and bus["calls"] >= bus["transactions"], diag
    assert spi["chip"] == BOARDS[runtime][1], diag
    model = spi["model"]
    # the shim and the model saw the same bus (the model counts what reached it)
    assert model.get("spi_transactions") == bus["transactions"], diag
    assert model.get("spi_bytes") == bus["bytes"], diag
    assert res["board"] == spi["board"], diag


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_connect_and_exchange(ns, runtime):
    require_chip(runtime)
    server = EchoServer(LINUX_IP, 7001, sock_factory=lambda *a: ns.call(__import__("socket").create_server, *a))
    try:
        t0 = time.monotonic()
        proc = ns.run(cli_argv(ns, "connect", LINUX_IP, 7001, "--send", devicecase.PAYLOAD.replace("\n", "\\n"),
                               "--timeout", "20", runtime=runtime),
                      check=False, timeout=CLI_TIMEOUT_S, env=child_env(), cwd=ROOT)
        elapsed = time.monotonic() - t0
    finally:
        server.close()
    diag = describe(proc.returncode, proc.stdout, proc.stderr)
    res = last_json(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0 and res["result"] == "connected", diag
    assert res["runtime"] == runtime, diag
    assert res["received"] == devicecase.ECHO_PREFIX + devicecase.PAYLOAD, diag
    assert res["ended"] == "peer-closed" and res["final_state"] in ("CLOSED", "TIME-WAIT"), diag
    assert server.accepted is not None and "%s:%d" % server.accepted == res["local"], diag
    assert any(e["event"] == "arp-resolved" for e in res["events"]), diag
    check_spi(res, runtime, diag)
    assert res["spi"]["model"].get("spi_transactions", 0) > 0, diag
    assert elapsed < 30, diag


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_refused_port(ns, runtime):
    require_chip(runtime)
    proc = ns.run(cli_argv(ns, "connect", LINUX_IP, 7002, runtime=runtime), check=False,
                  timeout=CLI_TIMEOUT_S, env=child_env(), cwd=ROOT)
    diag = describe(proc.returncode, proc.stdout, proc.stderr)
    res = last_json(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 1 and res["result"] == "ECONNREFUSED", diag
    assert res["syn_sent_ms"] == [0], diag
    assert res["counters"].get("tcp_connect_refused") == 1, diag
    check_spi(res, runtime, diag)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_linux_pings_the_board(ns, runtime):
    require_chip(runtime)
    proc = ns.popen(cli_argv(ns, "serve", "--seconds", "30", runtime=runtime), env=child_env(), cwd=ROOT,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = read_line(proc.stdout, time.monotonic() + 20)
        if ready is None or not ready.startswith("ready"):
            proc.kill()
            out, err = proc.communicate(timeout=10)
            raise AssertionError("no ready line (got %r)\n%s" % (ready, describe(proc.returncode, out.decode(), err.decode())))
        p = devicecase.ping(ns.exec_prefix, STACK_IP)
        out, err = proc.communicate(timeout=20)  # closes stdin: serve ends and prints its counters
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    diag = describe(proc.returncode, out.decode(), err.decode())
    assert p.returncode == 0 and "3 received" in p.stdout, p.stdout + p.stderr + diag
    res = last_json(proc.returncode, out.decode(), err.decode())
    assert proc.returncode == 0 and res["result"] == "served", diag
    assert res["counters"].get("icmp_echo_reply_sent", 0) >= 3, diag
    check_spi(res, runtime, diag)


class SinkServer:
    """Accepts one connection in ns, reads to EOF, answers "<bytes> <sha256>" and closes."""

    def __init__(self, ns, port):
        import socket

        self.sock = ns.call(socket.create_server, (LINUX_IP, port))
        self.sock.settimeout(30)
        self.got = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import hashlib

        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            h = hashlib.sha256()
            n = 0
            for _ in range(100000):
                d = conn.recv(65536)
                if not d:
                    break
                h.update(d)
                n += len(d)
            self.got = (n, h.hexdigest())
            conn.sendall(("%d %s" % self.got).encode())

    def close(self):
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_upload_through_a_lossy_link(ns, runtime, tmp_path):
    """100 KB through the driver and the chip model while the bridge drops, reorders and
    duplicates frames (seeded): the server's sha256 must match, recovery goes through the chip."""
    require_chip(runtime)
    from realpeer import payload, sha

    data = payload(100000, 4)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    server = SinkServer(ns, 7003)
    try:
        proc = ns.run(cli_argv(ns, "connect", LINUX_IP, 7003, "--send-file", str(src), "--rx-buffer", "8192",
                               "--tx-buffer", "8192", "--timeout", "30", "--drop-chance", "0.03",
                               "--reorder-chance", "0.03", "--duplicate-chance", "0.02", "--fault-seed", "404",
                               runtime=runtime),
                      check=False, timeout=CLI_TIMEOUT_S, env=child_env(), cwd=ROOT)
    finally:
        server.close()
    diag = describe(proc.returncode, proc.stdout, proc.stderr)
    res = last_json(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0 and res["result"] == "connected", diag
    assert server.got == (len(data), sha(data)), (server.got, diag)
    assert res["received"] == "%d %s" % (len(data), sha(data)), diag
    assert res["throughput"]["send"]["complete"], diag
    f = res["faults"]["counters"]
    assert f["dropped"] > 0, diag  # the faults really happened
    check_spi(res, runtime, diag)
    assert res["spi"]["bus"]["bytes"] > len(data), diag


# -- the real-board scenarios on the virtual board -------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_board_script_on_the_virtual_board(ns, runtime, tmp_path):
    """The program test_real_board.py sends to a board (tests/device/board_script.py with its
    config and the board file) run by virtual_runner.py: bring-up by tcpip.board over the machine
    shim, ping, echo, refused, and an HTTP server that curl fetches from twice."""
    require_chip(runtime)
    make = lambda *a: ns.call(__import__("socket").create_server, *a)  # noqa: E731
    server = EchoServer(LINUX_IP, 0, sock_factory=make)
    cfg = scenario_config(LINUX_IP, server.port, closed_port(LINUX_IP, make), addr=STACK_ADDR,
                          gateway=LINUX_IP)
    board_file = os.path.join(ROOT, BOARDS[runtime][0])
    program = tmp_path / "program.py"
    program.write_text(devicecase.board_program(cfg, board_file))
    run = {"program": str(program), "board_file": board_file}
    bridge = ns.call(FrameBridge, ns.tap)
    stop = threading.Event()
    relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop, "duration": 60}, daemon=True)
    relay.start()
    run["bridge_port"] = bridge.port
    env = child_env({"MICROPYPATH": ":".join([os.path.join(ROOT, "lib"), os.path.join(ROOT, "host_tools", "mp"), HERE])})
    proc = ns.popen([micropython_binary(), "-X", "heapsize=4M", os.path.join(HERE, "virtual_runner.py")],
                    env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write((json.dumps(run) + "\n").encode())
        proc.stdin.close()
        steps, lines = drive(proc, lambda s: devicecase.ping(ns.exec_prefix, STACK_IP),
                             time.monotonic() + 60, last_step="spi",
                             on_listening=lambda s: devicecase.curl_board(ns.exec_prefix, STACK_IP))
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read().decode(errors="replace")
        proc.wait(10)
        stop.set()
        relay.join(5)
        bridge.close()
        server.close()
    lines.append("--- stderr ---\n" + err)
    check_scenarios(steps, lines, server)
    assert steps["up"]["ip"] == STACK_IP and steps["up"]["chip"] == BOARDS[runtime][1]
    spi = steps.get("spi")
    assert spi is not None and spi["bus"]["wiring_errors"] == 0 and spi["bus"]["transactions"] > 0, lines[-20:]


# -- in-process (CPython), no network ----------------------------------------------------------------
def arp_request(sender_mac, sender_ip, target_ip):
    import socket

    return (b"\xff" * 6 + sender_mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + sender_mac
            + socket.inet_aton(sender_ip) + b"\x00" * 6 + socket.inet_aton(target_ip) + b"\x00" * 18)


@pytest.fixture
def shim():
    import machine_shim

    machine_shim.reset_board()
    yield machine_shim
    machine_shim.uninstall()
    machine_shim.reset_board()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_in_process_board_answers_arp_through_driver_and_model(shim, runtime):
    require_chip(runtime)
    import board_script
    from virtual_board import VirtualBoard

    with open(os.path.join(ROOT, BOARDS[runtime][0])) as f:
        board = board_script.board_from_source(f.read())
    link = ListLink()
    vb = VirtualBoard(board, link, unique_id=b"\x01\x02\x03\x04\x05\x06\x07\x08")
    stack = vb.bring_up("192.0.2.2/24", "192.0.2.1")
    assert vb.how == "tcpip.board.bring_up"
    import machine

    assert machine is shim
    peer = b"\x02\x00\x00\x00\x00\x09"
    link.inbox.append(arp_request(peer, "192.0.2.1", "192.0.2.2"))
    for _ in range(20):
        stack.poll()
        if link.sent:
            break
    replies = [f for f in link.sent if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02"]
    assert len(replies) == 1, link.sent
    assert replies[0][0:6] == peer and replies[0][6:12] == stack.mac
    c = vb.spi_counters()
    assert c["bus"]["wiring_errors"] == 0 and c["bus"]["transactions"] > 0, c
    assert c["model"]["spi_transactions"] == c["bus"]["transactions"], c


def test_unknown_chip_is_refused_with_its_name(shim):
    from virtual_board import VirtualBoard

    class Board:
        BOARD = "nothing"
        CHIP = "cs8900"
        SPI_ID = 0
        CS = 17

    with pytest.raises(ValueError) as info:
        VirtualBoard(Board, ListLink())
    assert "cs8900" in str(info.value) and "w5500" in str(info.value)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_driver_wait_returns_for_a_frame_waiting_on_the_wire(shim, runtime):
    """Stack.run_until sleeps in the driver's wait(): a frame waiting on the wire must end it at
    once (W5500: the INT pin, which a lazy model must drive from the link as a chip does; ENC28J60
    rev B7: PKTIF is unreliable, so the driver polls EPKTCNT), else every frame of a quiet line
    arrives up to a second late. A quiet line must make wait() really wait."""
    require_chip(runtime)
    import time

    import board_script
    from virtual_board import VirtualBoard

    with open(os.path.join(ROOT, BOARDS[runtime][0])) as f:
        board = board_script.board_from_source(f.read())
    link = ListLink()
    vb = VirtualBoard(board, link)
    stack = vb.bring_up("192.0.2.2/24")
    nic = vb.driver
    for _ in range(5):
        stack.poll()
    if getattr(nic, "wait", None) is None:
        return  # Stack.run_until then sleeps 1 ms at a time: nothing to check
    t0 = time.monotonic()
    nic.wait(60)
    quiet = time.monotonic() - t0
    link.inbox.append(arp_request(b"\x02\x00\x00\x00\x00\x09", "192.0.2.1", "192.0.2.2"))
    t0 = time.monotonic()
    nic.wait(2000)
    waited = time.monotonic() - t0
    stack.poll()
    assert quiet >= 0.04, "wait(60) on a quiet line returned after %.3f s" % quiet
    assert waited < 0.25, "wait(2000) took %.3f s with a frame waiting on the wire" % waited
    assert link.inbox == [] and any(f[12:14] == b"\x08\x06" for f in link.sent), link.sent


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pulling_the_cable_in_the_chip_model_is_seen_by_the_stack(shim, runtime):
    """Link events through the real driver and the chip model (issue 10, item 5): the model's
    cable goes (W5500 PHYCFGR LNK, ENC28J60 PHSTAT2 LSTAT), the stack sees it within a second of
    its clock, and again when it comes back."""
    require_chip(runtime)
    import board_script
    from manualclock import ManualClock
    from virtual_board import VirtualBoard

    with open(os.path.join(ROOT, BOARDS[runtime][0])) as f:
        board = board_script.board_from_source(f.read())
    clock = ManualClock(0)
    vb = VirtualBoard(board, ListLink())
    if hasattr(vb.model, "clock"):
        vb.model.clock = clock  # the chip's own timing (ENC28J60: ready after a reset) on the same clock
    stack = vb.bring_up("192.0.2.2/24", clock=clock)
    if not hasattr(vb.model, "set_link"):
        assert not hasattr(vb.driver, "link_up") or stack.link in (None, True)
        return  # (the FIFO test chip has no PHY)
    seen = []
    stack.on_link = seen.append

    def seconds(n, until):
        for _ in range(n):
            clock.advance(1000)
            stack.poll()
            if until():
                return True
        return False

    # the first agreeing readings set the link without an event; a PHY that needs a moment after
    # its reset reports down first, and then up is an event
    assert seconds(10, lambda: stack.link is True), stack.link
    del seen[:]
    down = stack.counters.link_down
    up = stack.counters.link_up
    vb.model.set_link(False)
    assert seconds(5, lambda: stack.link is False)
    assert seen == [False] and stack.counters.link_down == down + 1
    vb.model.set_link(True)
    assert seconds(5, lambda: stack.link is True)
    assert seen == [False, True] and stack.counters.link_up == up + 1
