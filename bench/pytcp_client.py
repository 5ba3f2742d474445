"""PyTCP 2.7.6 as a TCP client over a TAP, for bench_throughput.py (run it inside the namespace).

    ip netns exec NS .venv/bin/python bench/pytcp_client.py --tap tap1 --addr 198.51.100.2/24 \\
        --server 198.51.100.1 --port PORT --bytes N --runs down,up [--timeout S]

How PyTCP is driven (its public 2.7 API, read from the package's source):
  * `pytcp.TcpIpStack(interface=..., ip4_address="a.b.c.d/n")` opens /dev/net/tun and attaches to
    the existing TAP with TUNSETIFF (IFF_TAP | IFF_NO_PI); `start()` starts its threads (a 1 ms
    timer that also drives every TCP session's state machine, RX ring, TX ring, packet handler,
    ARP and ND caches) and claims the address: three ARP probes 1-2 s apart (3-6 s) before the
    first connect is possible.
  * `pytcp.lib.socket.socket(AF_INET4, SOCK_STREAM)`: connect() blocks until ESTABLISHED,
    send() appends to an unbounded buffer and returns at once, recv() blocks until data (b"" at
    the end), close() starts the FIN exchange. `stop()` ends the threads.
Settings changed from PyTCP's defaults, none of which touch its TCP code: logging off
(config.LOG_CHANEL emptied; it prints every packet otherwise) and IPv6 off after the constructor
(config.IP6_SUPPORT, so start() skips the router solicitation wait; the namespace has IPv6 off).
Its receive window is its default 65535 bytes (config.LOCAL_TCP_WIN), MSS 1460.

Prints one JSON line per run (the same fields as bench_throughput.py's rows), then {"done": true}.
Exits with os._exit so that a PyTCP thread that does not stop cannot keep the process alive.
"""
import argparse
import json
import os
import sys
import time

HEADER_LEN = 9
REPLY_LEN = 8
# PyTCP picks the lowest free ephemeral port (set.pop()), so consecutive connections would reuse the
# 4-tuple the server still holds in TIME-WAIT (it closes first), and Linux drops about half of such
# SYNs (a random ISN below the old one): each run binds its own port instead.
LOCAL_PORT_BASE = 41000


def header(direction, nbytes):
    return (b"D" if direction == "down" else b"U") + nbytes.to_bytes(8, "big")


def one_run(psock, server, port, direction, nbytes, local_port):
    res = {"direction": direction, "ring": None, "bytes": 0, "us": 0, "ok": False, "error": None,
           "runtime": "CPython %d.%d.%d" % sys.version_info[:3]}
    s = psock.socket(family=psock.AF_INET4, type=psock.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", local_port))
        s.connect((server, port))
    except OSError as exc:
        res["error"] = "connect: %r" % exc
        return res
    t0 = time.perf_counter_ns()
    if direction == "down":
        s.send(header(direction, nbytes))
        got = 0
        while got < nbytes:
            chunk = s.recv()
            if not chunk:
                res["error"] = "peer closed after %d of %d bytes" % (got, nbytes)
                break
            got += len(chunk)
        res["bytes"] = got
    else:
        payload = bytes((i * 7 + 1) & 0xFF for i in range(256)) * (nbytes // 256 + 1)
        s.send(header(direction, nbytes) + payload[:nbytes])
        reply = b""
        while len(reply) < REPLY_LEN:
            chunk = s.recv()
            if not chunk:
                break
            reply += chunk
        res["bytes"] = int.from_bytes(reply[:REPLY_LEN], "big") if len(reply) >= REPLY_LEN else 0
        if res["bytes"] != nbytes:
            res["error"] = "server read %d of %d bytes" % (res["bytes"], nbytes)
    res["us"] = (time.perf_counter_ns() - t0) // 1000
    res["ok"] = res["error"] is None
    s.close()
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tap", required=True)
    p.add_argument("--addr", required=True, help="PyTCP's address, a.b.c.d/n")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--runs", default="down,up")
    p.add_argument("--timeout", type=float, default=60.0, help="unused here: the caller kills us")
    args = p.parse_args(argv)

    from pytcp import config

    config.LOG_CHANEL = set()
    from pytcp import TcpIpStack
    from pytcp.lib import socket as psock
    from pytcp.lib import stack as pstack

    stack = TcpIpStack(interface=args.tap, ip4_address=args.addr)
    config.IP6_SUPPORT = False
    stack.start()
    status = 0
    try:
        if not pstack.packet_handler.ip4_host:
            print(json.dumps({"direction": "-", "ring": None, "bytes": 0, "us": 0, "ok": False,
                              "runtime": "CPython", "error": "PyTCP did not claim %s" % args.addr}))
            status = 1
        else:
            for i, direction in enumerate(args.runs.split(",")):
                res = one_run(psock, args.server, args.port, direction, args.bytes, LOCAL_PORT_BASE + i)
                print(json.dumps(res), flush=True)
                time.sleep(0.2)  # let PyTCP finish the FIN exchange before the next connect
        print(json.dumps({"done": True}), flush=True)
    finally:
        stack.stop()
        sys.stdout.flush()
        os._exit(status)


if __name__ == "__main__":
    main()
