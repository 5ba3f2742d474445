"""Command line: drive the tcpip stack over a Linux TAP against a real peer.

    python -m host_tools connect HOST PORT --tap IFNAME --addr A.B.C.D/N [--gateway IP]
        [--send TEXT | --send-file PATH] [--recv-file PATH] [--syn-retries N] [--timeout SECONDS]
        [--pcap FILE] [--json] [--runtime RUNTIME] [--count N] [--half-close]
        [--rx-buffer N] [--tx-buffer N] [fault options]
    python -m host_tools serve --tap IFNAME --addr A.B.C.D/N [--gateway IP] [--seconds S]
        [--pcap FILE] [--json] [--runtime RUNTIME] [fault options]
    RUNTIME: cpython | micropython | virtual-w5500 | virtual-enc28j60
    python -m host_tools run SCRIPT.py (--tap IFNAME --addr A.B.C.D/N | --netns) [...] [-- ARGS]
        (host_tools/run.py: an unmodified MicroPython script over the stack)
    python -m host_tools demo
    python -m host_tools build|deploy|repl ...   (host_tools/build.py, deploy.py: docs/BOARDS.md)

Fault options (a seeded host_tools.faultlink.FaultLink between the TAP and the stack):
    --drop-chance P --corrupt-chance P --duplicate-chance P --reorder-chance P --delay-ms N
    --jitter-ms N --rate KBIT --fault-direction both|rx|tx --fault-seed N

Run it in the network namespace that holds the TAP (`ip netns exec NS python -m host_tools ...`).
The TAP must exist already (`ip tuntap add dev tap0 mode tap`, up, with the Linux peer's address):
the CLI attaches to it and never creates or configures interfaces.

--runtime cpython runs the stack in this process over a TapDevice. --runtime micropython runs the
same stack under the MicroPython unix port (`micropython` beside this interpreter, else on PATH):
this process opens the TAP and relays frames over UDP on 127.0.0.1 (host_tools.bridge, in a
thread), and the child runs firmware/connect_main.py over UdpFrameDevice, reporting JSON lines
that are printed here exactly as for cpython. --pcap records every frame in both runtimes (PcapTap
around the device, or the bridge's capture). Fault options wrap the TAP in a FaultLink: here on
cpython, inside the bridge on micropython; the pcap shows the stack's side of it. --send-file and
--recv-file stream through preallocated buffers; on micropython the child opens the files itself.
--runtime virtual-w5500|virtual-enc28j60 is micropython running a virtual board instead
(host_tools/mp/virtual_board.py): the board file, the machine shim, tcpip.board.bring_up and the chip
driver, against a model of the chip whose wire side is the bridge; the JSON adds board, heap, spi.

Exit status: 0 connected (and the --send exchange ended without error: the peer closed, or the
timeout ended it); 1 connect error, exchange error (reset) or a failure of the runtime; 2 usage
error (bad arguments, no such TAP, an interface that is not a TAP, no CAP_NET_ADMIN).
Every error is one line saying what to do: a usage error prints the subcommand's own usage, a
connect refused by the route rules says which one (host_tools/mp/netunreach.py).
"""
import argparse
import errno
import json
import os
import random
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)
FIRMWARE = os.path.join(ROOT, "firmware")  # connect_main.py: the Session, also the board's net.connect
if FIRMWARE not in sys.path:
    sys.path.append(FIRMWARE)

from tcpip import errors  # noqa: E402
from tcpip.route import Route  # noqa: E402
from tcpip.wire import ipv4  # noqa: E402
from connect_main import conn_lines, event_text, fmt_t  # noqa: E402

MP_SCRIPT = os.path.join(FIRMWARE, "connect_main.py")
MP_PATH = ":".join([LIB, os.path.join(ROOT, "host_tools", "mp"), FIRMWARE])  # udp_device, connect_main
# --runtime virtual-*: the unix port runs host_tools/mp/virtual_board.py, the board file's firmware
# path over the machine shim and a chip model (runtime -> board module in boards/)
VIRTUAL_BOARDS = {"virtual-w5500": "w5500_evb_pico", "virtual-enc28j60": "pico_enc28j60"}
VB_SCRIPT = os.path.join(ROOT, "host_tools", "mp", "virtual_board.py")
VB_PATH = MP_PATH + ":" + os.path.join(ROOT, "boards")
VB_EXTRA_PATHS = []   # more MICROPYPATH folders for virtual boards (tests add their own board files)
MP_HEAP = "4M"
DEFAULT_EXCHANGE_TIMEOUT_S = 10.0
ARP_GIVE_UP_S = 3.0       # the stack's ARP: 3 requests 1 s apart
RUNTIME_MARGIN_S = 20.0   # MicroPython child: start-up, close and slack beyond the stack's own limits
MAX_SERVE_S = 24 * 3600
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


# -- argument parsing ----------------------------------------------------------------------------
def unescape(text):
    r"""Interpret \r \n \t \\ (and \0) in TEXT; other backslashes are kept as they are."""
    out = []
    i = 0
    table = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", "0": "\0"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _ipv4_text(text):
    try:
        ipv4.aton(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def _cidr(text):
    try:
        Route().configure(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("bad --addr %r: %s (want A.B.C.D/N)" % (text, exc))
    if "/" not in text:
        raise argparse.ArgumentTypeError("--addr needs a prefix length: A.B.C.D/N")
    return text


def _port(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number: %r" % text)
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError("port must be 1..65535")
    return v


def _bounded_int(low, high):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not an integer: %r" % text)
        if not low <= v <= high:
            raise argparse.ArgumentTypeError("must be %d..%d" % (low, high))
        return v
    return parse


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not 0 < v <= MAX_SERVE_S:
        raise argparse.ArgumentTypeError("must be > 0 and <= %d" % MAX_SERVE_S)
    return v


def _chance(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("must be a probability 0..1")
    return v


FAULT_OPTIONS = (("drop_chance", "drop"), ("corrupt_chance", "corrupt"),
                 ("duplicate_chance", "duplicate"), ("reorder_chance", "reorder"),
                 ("delay_ms", "delay_ms"), ("jitter_ms", "jitter_ms"))


def _add_fault_args(p):
    g = p.add_argument_group(
        "fault injection", "a seeded FaultLink between the TAP and the stack (host_tools/faultlink.py): "
        "each frame of a faulted direction is dropped, corrupted, reordered or duplicated with these "
        "chances, then delayed and rate limited; rx = frames to the stack, tx = frames from it")
    g.add_argument("--drop-chance", type=_chance, default=0.0, metavar="P", help="drop a frame (0..1)")
    g.add_argument("--corrupt-chance", type=_chance, default=0.0, metavar="P",
                   help="flip one bit after the Ethernet header of an IPv4 frame (0..1)")
    g.add_argument("--duplicate-chance", type=_chance, default=0.0, metavar="P",
                   help="send a frame twice (0..1)")
    g.add_argument("--reorder-chance", type=_chance, default=0.0, metavar="P",
                   help="hold a frame back until the next one has passed (at most 10 ms) (0..1)")
    g.add_argument("--delay-ms", type=_bounded_int(0, 60000), default=0, metavar="N",
                   help="delay every frame N ms (each faulted direction)")
    g.add_argument("--jitter-ms", type=_bounded_int(0, 60000), default=0, metavar="N",
                   help="vary the delay by up to +-N ms (uniform; never reorders)")
    g.add_argument("--rate", type=_bounded_int(0, 10000000), default=0, metavar="KBIT",
                   help="limit each faulted direction to KBIT kilobits per second (0: no limit)")
    g.add_argument("--fault-direction", choices=("both", "rx", "tx"), default="both",
                   help="which direction is faulted (default both)")
    g.add_argument("--fault-seed", type=_bounded_int(0, 2 ** 63 - 1), metavar="N",
                   help="seed of the fault generators (default: a random one; the JSON and the "
                        "timeline print it so a run can be repeated)")


def fault_settings(args):
    """FaultLink keyword arguments from the options, or None when no fault is asked for."""
    wanted = any(getattr(args, a) for a, _ in FAULT_OPTIONS) or args.rate
    if not wanted:
        return None
    seed = args.fault_seed if args.fault_seed is not None else random.SystemRandom().randrange(1 << 31)
    kw = {"seed": seed, "direction": args.fault_direction, "rate_bps": args.rate * 1000}
    for a, k in FAULT_OPTIONS:
        kw[k] = getattr(args, a)
    return kw


def _add_device_args(p):
    p.add_argument("--tap", required=True, metavar="IFNAME",
                   help="existing TAP interface in this namespace (attached, never created)")
    p.add_argument("--addr", required=True, type=_cidr, metavar="A.B.C.D/N",
                   help="the stack's address and prefix, e.g. 192.0.2.2/24")
    p.add_argument("--gateway", type=_ipv4_text, metavar="IP",
                   help="default gateway (on the --addr network), e.g. 192.0.2.1")
    p.add_argument("--pcap", metavar="FILE", help="record every frame to this pcap file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the timeline")
    p.add_argument("--runtime", choices=("cpython", "micropython") + tuple(sorted(VIRTUAL_BOARDS)),
                   default="cpython",
                   help="run the stack here (cpython, default) or under the MicroPython unix port "
                        "through the UDP frame bridge (micropython), or there as a virtual board: "
                        "the board file, the machine shim, the chip driver and a model of the chip "
                        "(virtual-w5500: W5500-EVB-Pico, virtual-enc28j60: Pico + ENC28J60)")
    _add_fault_args(p)


# board commands: their own modules and argument parsers (listed in --help all the same)
BOARD_COMMANDS = {"build": ("host_tools.build", "main"), "deploy": ("host_tools.deploy", "main"),
                  "repl": ("host_tools.deploy", "repl_main")}
BOARD_HELP = {"build": "compile the .mpy bundle for a board and print the size table (docs/BOARDS.md)",
              "deploy": "build, then copy the bundle and /tcpip_config.py to a board with mpremote",
              "repl": "open a board's REPL (mpremote connect PORT repl)"}


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m host_tools",
        description="Drive the tcpip stack over a Linux TAP device against a real peer, run "
                    "MicroPython scripts over it, and build and deploy it to boards. The TAP "
                    "commands run in the namespace holding the TAP (ip netns exec NS ...).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Each command has its own help: python -m host_tools COMMAND -h. See docs/CLI.md "
               "and docs/BOARDS.md for examples.")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser(
        "connect", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="connect to HOST:PORT, optionally exchange data, print the timeline",
        description="Connect the stack to HOST:PORT and print the timeline: ARP request and "
                    "resolution, each SYN (\"SYN sent at t=... ms\"), SYN-ACK/ESTABLISHED, local port, "
                    "ISN, RTT -- or the error name (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ...).",
        epilog="The TAP must already exist in this namespace (ip tuntap add dev tap0 mode tap; ip link "
               "set tap0 up; ip addr add 192.0.2.1/24 dev tap0): the CLI attaches to it and never "
               "creates one. Exit status: 0 connected (and the exchange ended: peer closed or "
               "timeout), 1 connect or exchange error, 2 usage error or no such TAP.\n\n"
               "Example:\n  ip netns exec NS python -m host_tools connect 192.0.2.1 8080 --tap tap0 \\\n"
               "      --addr 192.0.2.2/24 --gateway 192.0.2.1 --send 'GET / HTTP/1.0\\r\\n\\r\\n'")
    c.add_argument("host", type=_ipv4_text, metavar="HOST", help="IPv4 address (dotted quad)")
    c.add_argument("port", type=_port, metavar="PORT")
    _add_device_args(c)
    c.add_argument("--send", metavar="TEXT",
                   help=r"after connecting send TEXT (escapes \r \n \t \\ interpreted) and print what "
                        r"comes back until the peer closes or --timeout")
    c.add_argument("--syn-retries", type=_bounded_int(0, 127), metavar="N",
                   help="SYN retransmissions before ETIMEDOUT (default 6, as Linux: 127 s)")
    c.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="limit for the exchange (default %d s) and for the connect itself (default: "
                        "only the SYN retries limit it)" % DEFAULT_EXCHANGE_TIMEOUT_S)
    c.add_argument("--count", type=_bounded_int(1, 1000), default=1, metavar="N",
                   help="connect N times in a row (each with the same exchange); default 1")
    c.add_argument("--half-close", action="store_true",
                   help="shutdown(SHUT_WR) after sending TEXT (for servers that read to EOF)")
    c.add_argument("--send-file", metavar="PATH",
                   help="after connecting send the file's bytes, then shutdown(SHUT_WR), and read "
                        "until the peer closes or --timeout (what comes back: JSON 'received', "
                        "or --recv-file)")
    c.add_argument("--recv-file", metavar="PATH",
                   help="write everything received to PATH (the JSON then gives its byte count and "
                        "sha256 instead of the text)")
    c.add_argument("--rx-buffer", type=_bounded_int(1, 65535), metavar="N",
                   help="receive ring per connection in bytes (TcpConfig.rx_buffer, default 12288)")
    c.add_argument("--tx-buffer", type=_bounded_int(1, 65535), metavar="N",
                   help="send ring per connection in bytes (TcpConfig.tx_buffer, default 12288)")

    s = sub.add_parser(
        "serve", help="keep the stack up (answers ARP and ping) for --seconds or until stdin closes",
        description="Open the TAP, print a ready line, then poll the stack so that it answers ARP "
                    "and ICMP echo (ping) for --seconds, until stdin reaches EOF (when stdin is a "
                    "pipe, socket or terminal) or until SIGTERM/SIGINT; then print the counters.")
    _add_device_args(s)
    s.add_argument("--seconds", type=_positive_float, default=60.0, metavar="S",
                   help="how long to serve (default 60)")

    from host_tools.run import add_parser as add_run_parser

    add_run_parser(sub, _cidr, _ipv4_text, _port, _positive_float)

    sub.add_parser("demo", help="make a namespace with an HTTP server and fetch from it on both runtimes",
                   description="Create a private network namespace with a TAP (192.0.2.1/24 on the "
                               "Linux side) and an HTTP server, fetch / with the CLI on cpython and "
                               "then on micropython, print both timelines, tear everything down. "
                               "Needs root.")
    for name in BOARD_COMMANDS:  # parsed by their own modules (board_command)
        sub.add_parser(name, help=BOARD_HELP[name], add_help=False)
    p.command_parsers = sub.choices
    return p


def board_command(argv):
    """build/deploy/repl: their own modules parse argv[1:]."""
    import importlib

    module, func = BOARD_COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), func)(argv[1:])


def _check_gateway(parser, args):
    if args.gateway is None or args.addr is None:
        return
    try:
        Route().configure(args.addr, 24, args.gateway)
    except ValueError as exc:
        parser.error("--gateway: %s" % exc)


def _check_files(parser, args):
    if args.command != "connect":
        return
    if args.send is not None and args.send_file is not None:
        parser.error("--send and --send-file exclude each other")
    if (args.send_file or args.recv_file) and args.count != 1:
        parser.error("--send-file/--recv-file work with one connection (--count 1)")
    if args.send_file is not None:
        if not os.path.isfile(args.send_file) or not os.access(args.send_file, os.R_OK):
            parser.error("--send-file: no readable file %r" % args.send_file)
        args.send_file = os.path.abspath(args.send_file)
    if args.recv_file is not None:
        where = os.path.dirname(os.path.abspath(args.recv_file))
        if not os.path.isdir(where) or os.path.isdir(args.recv_file):
            parser.error("--recv-file: cannot write %r" % args.recv_file)
        args.recv_file = os.path.abspath(args.recv_file)


# -- output ----------------------------------------------------------------------------------
def _decode(hex_text):
    return bytes.fromhex(hex_text or "").decode("utf-8", errors="replace")


class Reporter:
    """Turns session messages (firmware/connect_main.py) into the timeline or one JSON object."""

    def __init__(self, args, out=None):
        self.args = args
        self.json = args.json
        self.out = out if out is not None else sys.stdout
        self.start = {}
        self.events = []
        self.result = None
        self.ready = False
        self.count = getattr(args, "count", 1)
        self.send_text = unescape(args.send) if getattr(args, "send", None) is not None else None
        self.faults = None          # FaultLink settings (fault_settings(args)), None without faults
        self.fault_counters = None  # the link's counters once the run is over
        self.recv_temp = None       # micropython: the child's received bytes come back in this file

    def say(self, line=""):
        if not self.json:
            print(line, file=self.out, flush=True)

    def _prefix(self, msg):
        return "[%d] " % (msg.get("conn", 0) + 1) if self.count > 1 else ""

    def feed(self, msg):
        kind = msg.get("type")
        if kind == "start":
            self.start = msg
            a = self.args
            if a.command == "connect":
                self.say("tcpip %s: %s mac %s%s on %s -> connect %s:%d" % (
                    msg.get("runtime"), msg.get("addr"), msg.get("mac"),
                    (" gw " + msg["gateway"]) if msg.get("gateway") else "", a.tap, a.host, a.port))
            if msg.get("board"):
                self.say("virtual board %s: %s driver and model on SPI%s at %s MHz (CS %s, RST %s, INT %s); "
                         "bring-up by %s" % (
                             msg["board"], msg.get("chip"), msg.get("spi_id"),
                             "%g" % (msg.get("spi_hz", 0) / 1e6), msg.get("cs"), msg.get("rst"),
                             msg.get("int"), msg.get("bring_up")))
            if self.faults is not None:
                f = self.faults
                self.say("fault link (%s): seed %d, drop %g, corrupt %g, duplicate %g, reorder %g, "
                         "delay %d ms +- %d, rate %s" % (
                             f["direction"], f["seed"], f["drop"], f["corrupt"], f["duplicate"],
                             f["reorder"], f["delay_ms"], f["jitter_ms"],
                             ("%d kbit/s" % (f["rate_bps"] // 1000)) if f["rate_bps"] else "unlimited"))
        elif kind == "ready":
            self.ready = True
            line = "ready: %s mac %s on %s (%s), answering ARP and ping for %s s" % (
                self.start.get("addr"), self.start.get("mac"), self.args.tap,
                self.start.get("runtime"), fmt_t(self.args.seconds))
            # printed in --json mode too (callers wait for it); the JSON object is the last line
            print(line, file=self.out, flush=True)
        elif kind == "event":
            self.events.append({k: v for k, v in msg.items() if k != "type"})
            self.say(self._prefix(msg) + self._event_text(msg))
        elif kind == "sent":
            self.events.append({"conn": msg["conn"], "t": msg["t"], "event": "sent", "detail": msg["n"]})
            if getattr(self.args, "send_file", None):
                self.say(self._prefix(msg) + "queued all %d bytes of %s at t=%s ms" % (
                    msg["n"], self.args.send_file, fmt_t(msg["t"])))
            else:
                text = self.send_text if self.send_text is not None else ""
                self.say(self._prefix(msg) + "sent %d bytes at t=%s ms: %r" % (msg["n"], fmt_t(msg["t"]), text))
        elif kind == "data":
            n = len(msg["hex"]) // 2
            self.events.append({"conn": msg["conn"], "t": msg["t"], "event": "data", "detail": n})
            self.say(self._prefix(msg) + "received %d bytes at t=%s ms" % (n, fmt_t(msg["t"])))
        elif kind == "conn":
            self._take_temp(msg)
            self._conn_text(msg)
        elif kind == "result":
            self._take_temp(msg)
            for c in msg.get("connections", []):
                self._take_temp(c)
            self.result = msg
            if msg.get("mode") == "connect" and self.count > 1:
                ports = [c["local"].rsplit(":", 1)[1] for c in msg["connections"] if c.get("local")]
                self.say("%d of %d connects succeeded; local ports: %s" % (
                    msg["connected"], msg["count"], " ".join(ports)))
            if msg.get("mode") == "serve":
                self.say("served %.1f s" % (msg.get("elapsed_ms", 0) / 1000.0))
            self.say("counters: " + " ".join("%s=%s" % kv for kv in sorted(msg.get("counters", {}).items())))
            spi = msg.get("spi")
            if spi:
                b = spi.get("bus", {})
                self.say("spi: %s transactions, %s bytes, %s calls, %s wiring errors%s" % (
                    b.get("transactions"), b.get("bytes"), b.get("calls"), b.get("wiring_errors"),
                    (" %s" % b["errors"]) if b.get("errors") else ""))
                for part in ("model", "driver"):
                    if spi.get(part):
                        self.say("%s: %s" % (part, " ".join(
                            "%s=%s" % kv for kv in sorted(spi[part].items()))))

    def say_fault_counters(self):
        if self.fault_counters is not None:
            c = self.fault_counters
            self.say("fault link did: " + "; ".join(
                "%s %s" % (d, " ".join("%s=%d" % (k, c[d][k]) for k in sorted(c[d]) if c[d][k]))
                for d in ("rx", "tx")))

    def _take_temp(self, msg):
        """micropython without --recv-file: the child wrote what it received to our temp file."""
        if self.recv_temp is None or msg.get("recv_file") != self.recv_temp:
            return
        try:
            with open(self.recv_temp, "rb") as f:
                msg["received_hex"] = f.read().hex()
        except OSError:
            msg["received_hex"] = ""
        del msg["recv_file"]

    def _event_text(self, m):
        return event_text(m)

    def _conn_text(self, c):
        for line in conn_lines(c, _decode(c.get("received_hex")), self._prefix(c)):
            self.say(line)
        reason = self.unreach_reason(c)
        if reason:
            self.say(self._prefix(c) + reason)

    def unreach_reason(self, c):
        """For a connect that ENETUNREACH ended before any SYN: the route rule that refused it."""
        a = self.args
        if (c.get("result") != "ENETUNREACH" or c.get("syn_sent_ms") or a.command != "connect"
                or getattr(a, "addr", None) is None):
            return None
        from host_tools.mp.netunreach import reason

        route = Route()
        try:
            route.configure(a.addr, 24, getattr(a, "gateway", None))
        except ValueError:
            return None
        return reason(route, ipv4.aton(a.host))

    def json_object(self, error=None, extra=None):
        r = self.result or {}
        out = {}
        if r.get("mode") == "serve" or self.args.command == "serve":
            out["result"] = "served" if error is None else "error"
            out["counters"] = r.get("counters", {})
            out["elapsed_ms"] = r.get("elapsed_ms")
        else:
            out["result"] = r.get("result", "error") if error is None else "error"
            for k in ("errno", "local", "remote", "isn", "syn_sent_ms", "rtt_ms", "srtt_ms", "mss",
                      "connect_ms", "sent", "ended", "exchange_error", "final_state", "count",
                      "connected", "elapsed_ms", "counters"):
                out[k] = r.get(k)
            out["received"] = _decode(r.get("received_hex"))
            if r.get("result") == "ENETUNREACH":
                out["reason"] = self.unreach_reason(r)
            for k in ("received_bytes", "received_sha256", "sent_sha256", "throughput", "send_file",
                      "recv_file"):
                out[k] = r.get(k)
            conns = []
            for c in r.get("connections", []):
                cc = {k: v for k, v in c.items() if k not in ("type", "received_hex")}
                cc["received"] = _decode(c.get("received_hex"))
                conns.append(cc)
            out["connections"] = conns
            out["events"] = self.events
        out["runtime"] = self.args.runtime
        out["tap"] = self.args.tap
        out["addr"] = self.start.get("addr", self.args.addr)
        out["gateway"] = self.start.get("gateway", self.args.gateway)
        out["mac"] = self.start.get("mac")
        out["pcap"] = self.args.pcap
        out["fault_seed"] = self.faults["seed"] if self.faults is not None else None
        if self.faults is not None:
            out["faults"] = dict(self.faults)
            out["faults"]["counters"] = self.fault_counters
        if self.start.get("board"):  # virtual boards: the board and the chip's SPI counters
            out["board"] = self.start["board"]
            out["heap"] = self.start.get("heap")
            out["spi"] = r.get("spi")
        if error is not None:
            out["error"] = error
        if extra:
            out.update(extra)
        return out

    def exit_code(self):
        r = self.result
        if r is None:
            return EXIT_FAIL
        if r.get("mode") == "serve":
            return EXIT_OK
        ok = r.get("result") == "connected" and not r.get("exchange_error")
        return EXIT_OK if ok and r.get("connected") == r.get("count") else EXIT_FAIL


# -- helpers ---------------------------------------------------------------------------------
def _config(args):
    cfg = {"addr": args.addr, "gateway": args.gateway, "syn_retries": getattr(args, "syn_retries", None),
           "mtu": 1500}
    if args.command == "connect":
        send = unescape(args.send).encode() if args.send is not None else None
        cfg.update({"mode": "connect", "host": args.host, "port": args.port,
                    "send_hex": send.hex() if send is not None else None,
                    "connect_timeout": args.timeout,
                    "exchange_timeout": args.timeout if args.timeout is not None else DEFAULT_EXCHANGE_TIMEOUT_S,
                    "half_close": args.half_close, "count": args.count,
                    "send_file": args.send_file, "recv_file": args.recv_file,
                    "rx_buffer": args.rx_buffer, "tx_buffer": args.tx_buffer})
    else:
        cfg.update({"mode": "serve", "seconds": args.seconds})
    return cfg


def _syn_budget_s(cfg):
    """Longest a connect can take with the stack's SYN timer (RTO 1 s doubling, capped at 120 s)."""
    if cfg.get("connect_timeout") is not None:
        return cfg["connect_timeout"] + ARP_GIVE_UP_S
    retries = cfg.get("syn_retries")
    retries = 6 if retries is None else retries
    total = 0.0
    rto = 1.0
    for _ in range(retries + 1):
        total += rto
        rto = min(rto * 2, 120.0)
    return total + ARP_GIVE_UP_S


def _child_deadline_s(cfg):
    if cfg["mode"] == "serve":
        return cfg["seconds"] + RUNTIME_MARGIN_S
    exchanges = cfg.get("send_hex") is not None or cfg.get("send_file") or cfg.get("recv_file")
    per = _syn_budget_s(cfg) + (cfg["exchange_timeout"] if exchanges else 0) + 2.0
    return per * cfg["count"] + RUNTIME_MARGIN_S


def _stdin_watchable():
    """Watch stdin for EOF only when it is a pipe, socket or terminal (not /dev/null or a file)."""
    try:
        st = os.fstat(0)
    except OSError:
        return False
    return stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode) or os.isatty(0)


def _watch_stdin(event):
    """Set event when stdin reaches EOF (daemon thread; bounded reads)."""
    def body():
        for _ in range(1 << 20):
            try:
                chunk = os.read(0, 4096)
            except OSError:
                break
            if not chunk:
                break
        event.set()

    threading.Thread(target=body, name="stdin-watch", daemon=True).start()


class _LineReader:
    """Lines from a pipe with a deadline, keeping partial lines between calls."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = b""
        self.eof = False

    def line(self, timeout_s):
        end = time.monotonic() + max(0.0, timeout_s)
        for _ in range(100000):
            if b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                return line.decode(errors="replace")
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode(errors="replace")
                return None
            self.buf += chunk
        return None


CAP_NET_ADMIN = 12  # linux/capability.h


def has_net_admin(status_path="/proc/self/status"):
    """True if this process may configure the network (CAP_NET_ADMIN in its effective set)."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def tap_error(tap, exc, privileged=None, netns_hint=False):
    """One line for a TAP that could not be attached (exc from TapDevice / FrameBridge), with the fix."""
    if privileged is None:
        privileged = has_net_admin()
    if isinstance(exc, ValueError):  # TapDevice: a name the kernel cannot take
        return "--tap %r: %s (at most 15 characters)" % (tap, exc)
    code = exc.errno
    if code in (errno.EPERM, errno.EACCES) or (code == errno.ENODEV and not privileged):
        where = "no TAP %r here (%s)" % (tap, errno.errorcode.get(code, code)) if code == errno.ENODEV \
            else "attaching to TAP %r was refused (%s)" % (tap, errno.errorcode.get(code, code))
        return ("%s: run as root or with CAP_NET_ADMIN (sudo), in the namespace that holds the TAP "
                "(ip netns exec NS ...)" % where)
    if code == errno.EBUSY:  # it exists: another process is attached to it
        return ("TAP %r is in use by another process (%s): one program at a time can attach to it "
                "(a CLI, bridge or test still running?)" % (tap, exc))
    if code == errno.EINVAL:  # TUNSETIFF on an interface that is no TAP (lo, eth0, a veth, a TUN)
        return ("%r is not a TAP device: --tap takes a TAP, e.g. one made with "
                "`ip tuntap add dev tap0 mode tap && ip link set tap0 up`" % tap)
    if code == errno.ENODEV:
        return ("no interface %r in this network namespace: create the TAP (ip tuntap add dev %s mode "
                "tap && ip link set %s up && ip addr add 192.0.2.1/24 dev %s) and run in its namespace "
                "(ip netns exec NS ...)%s" % (tap, tap, tap, tap, ", or use --netns" if netns_hint else ""))
    return "cannot attach to TAP %r: %s" % (tap, exc)


def _open_tap_or_exit(args, opener):
    try:
        return opener()
    except (OSError, ValueError) as exc:
        msg = tap_error(args.tap, exc, netns_hint=args.command == "run")
        print("error: " + msg, file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"result": "error", "error": msg, "runtime": args.runtime, "tap": args.tap}))
        raise SystemExit(EXIT_USAGE)


def _install_stop_signals(stop):
    def handler(signum, frame):
        stop.set()

    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    return old


def _ignore_stop_signals():
    """Ignore SIGINT and SIGTERM (main thread only) while cleaning up; returns what to restore."""
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            old[sig] = signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
    return old


def _restore_signals(old):
    for sig, h in old.items():
        signal.signal(sig, h)


# -- runtimes --------------------------------------------------------------------------------
def run_cpython(args, reporter):
    from connect_main import Session, build_stack
    from host_tools.pcap import PcapTap, PcapWriter
    from host_tools.tap import TapDevice

    cfg = _config(args)
    tap = _open_tap_or_exit(args, lambda: TapDevice(args.tap))
    writer = None
    link = None
    try:
        dev = tap
        if reporter.faults is not None:
            from host_tools.faultlink import FaultLink
            link = dev = FaultLink(tap, **reporter.faults)
        if args.pcap:
            writer = PcapWriter(args.pcap)
            dev = PcapTap(dev, writer)  # the stack's side of any fault link
        stack = build_stack(dev, cfg)
        session = Session(stack, reporter.feed)
        session.start_message()
        if cfg["mode"] == "serve":
            stop = threading.Event()
            if _stdin_watchable():
                _watch_stdin(stop)
            old = _install_stop_signals(stop)
            try:
                session.serve(cfg["seconds"], stop.is_set)
            finally:
                _restore_signals(old)
        else:
            send = bytes.fromhex(cfg["send_hex"]) if cfg["send_hex"] is not None else None
            session.connect(cfg["host"], cfg["port"], send, cfg["connect_timeout"],
                            cfg["exchange_timeout"], cfg["half_close"], cfg["count"],
                            cfg["send_file"], cfg["recv_file"])
    finally:
        if link is not None:
            reporter.fault_counters = link.counters()
        if writer is not None:
            writer.close()
        tap.close()
    return None


def run_micropython(args, reporter, script=MP_SCRIPT, mp_path=MP_PATH, extra_cfg=None):
    """Bridge in a thread here, the stack in a micropython child; returns an error text or None.
    script/mp_path/extra_cfg: what the child runs (virtual boards: virtual_board.py + the board)."""
    from host_tools.bridge import FrameBridge
    from host_tools.netns import micropython_binary

    try:
        mp = micropython_binary()
    except RuntimeError as exc:
        return str(exc)
    cfg = _config(args)
    if extra_cfg:
        cfg.update(extra_cfg)
    bridge = _open_tap_or_exit(args, lambda: FrameBridge(args.tap, pcap=args.pcap, faults=reporter.faults))
    cfg["bridge_port"] = bridge.port
    if cfg.get("send_file") and not cfg.get("recv_file"):
        # what comes back reaches us through a file, not hex-encoded through the child's stdout
        fd, reporter.recv_temp = tempfile.mkstemp(prefix="tcpip-recv-", suffix=".bin")
        os.close(fd)
        cfg["recv_file"] = reporter.recv_temp
    stop_bridge = threading.Event()
    deadline = time.monotonic() + _child_deadline_s(cfg)
    relay = threading.Thread(target=bridge.serve, name="frame-bridge",
                             kwargs={"stop_event": stop_bridge, "duration": _child_deadline_s(cfg) + 5},
                             daemon=True)
    relay.start()
    env = dict(os.environ)
    env["MICROPYPATH"] = mp_path
    serve = cfg["mode"] == "serve"
    cfg["watch_stdin"] = serve
    child = None
    stderr_chunks = []
    stop = threading.Event()
    old = {}
    error = None
    try:
        # the config goes in as stdin's first line: this unix port dies on argv strings >= 256 chars
        child = subprocess.Popen([mp, "-X", "heapsize=" + MP_HEAP, script], env=env, cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdin.write(json.dumps(cfg).encode() + b"\n")
        child.stdin.flush()
        if not serve:
            child.stdin.close()
        if serve:
            if _stdin_watchable():
                _watch_stdin(stop)
            old = _install_stop_signals(stop)

        def drain_stderr():
            for _ in range(1 << 20):
                chunk = child.stderr.read1(65536) if hasattr(child.stderr, "read1") else child.stderr.read(65536)
                if not chunk:
                    break
                stderr_chunks.append(chunk)

        err_thread = threading.Thread(target=drain_stderr, daemon=True)
        err_thread.start()
        reader = _LineReader(child.stdout)
        for _ in range(1 << 20):
            if stop.is_set() and child.stdin is not None and not child.stdin.closed:
                child.stdin.close()  # the child sees EOF on stdin and ends its serve loop
            left = deadline - time.monotonic()
            if left <= 0:
                error = "micropython child gave no result within %.0f s" % _child_deadline_s(cfg)
                break
            line = reader.line(min(left, 0.25))
            if line is None:
                if reader.eof:
                    break
                continue
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                print("micropython: " + line, file=sys.stderr)
                continue
            reporter.feed(msg)
            if msg.get("type") == "result":
                break
        if child.stdin is not None and not child.stdin.closed:
            child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        err_thread.join(5)
        if reporter.result is None and error is None:
            error = "micropython child exited (status %s) without a result" % child.returncode
    finally:
        _restore_signals(old)
        # a second Ctrl-C (or SIGTERM) now would leave the child, the bridge or the temp file behind
        ignored = _ignore_stop_signals()
        try:
            if child is not None and child.poll() is None:
                child.kill()
                child.wait(5)
            stop_bridge.set()
            relay.join(5)
            if bridge.link is not None:
                reporter.fault_counters = bridge.link.counters()
            bridge.close()
            if reporter.recv_temp is not None:
                try:
                    os.unlink(reporter.recv_temp)
                except OSError:
                    pass
        finally:
            _restore_signals(ignored)
    if error is not None:
        err_text = b"".join(stderr_chunks).decode(errors="replace").strip()
        if err_text:
            error += "; its stderr:\n" + err_text
    return error


def run_session(args):
    reporter = Reporter(args)
    reporter.faults = fault_settings(args)
    if args.runtime == "micropython":
        error = run_micropython(args, reporter)
    elif args.runtime in VIRTUAL_BOARDS:
        error = run_micropython(args, reporter, VB_SCRIPT, ":".join([VB_PATH] + VB_EXTRA_PATHS),
                                {"board": VIRTUAL_BOARDS[args.runtime]})
    else:
        error = run_cpython(args, reporter)
    reporter.say_fault_counters()
    if error is not None:
        print("error: " + error, file=sys.stderr)
    if args.json:
        print(json.dumps(reporter.json_object(error)), flush=True)
    if error is not None:
        return EXIT_FAIL
    return reporter.exit_code()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in BOARD_COMMANDS:
        return board_command(argv)
    script_args = []
    if argv and argv[0] == "run":
        from host_tools.run import split_script_args

        argv, script_args = split_script_args(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from host_tools.demo import main as demo_main
        return demo_main()
    command_parser = parser.command_parsers[args.command]  # its errors print its own usage
    if args.command == "run":
        from host_tools.run import check_args

        check_args(command_parser, args)
        script_args = args.script_args + script_args
    _check_gateway(command_parser, args)
    _check_files(command_parser, args)

    def on_term(signum, frame):
        raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C (ends a micropython child, closes the TAP)

    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.command == "run":
            from host_tools.run import run_command

            return run_command(args, script_args, _open_tap_or_exit)
        return run_session(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
