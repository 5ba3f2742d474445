# The connect/serve session behind `python -m host_tools connect|serve`, shared by both runtimes,
# and behind net.connect() on a board (the tcpip-net component: /lib/connect_main.mpy).
#
# CPython: host_tools/cli.py imports this module and runs Session over a TapDevice, with an emit
# callback that feeds its timeline printer directly.
# MicroPython (unix port): the CLI runs the TAP<->UDP frame bridge and starts
#     MICROPYPATH=lib:host_tools/mp micropython firmware/connect_main.py '<json config>'
# which builds the same Stack over UdpFrameDevice, runs the same Session and prints every message
# as one JSON line on stdout; the CLI reads them and prints the same timeline / JSON result.
#
# Messages (dicts; "type" says which):
#   start   runtime, mac, addr, gateway            (once, before anything is sent)
#   ready   mode "serve": the device is open, the stack answers ARP and ping
#   event   conn, t (ms since that connect began), event, detail, plus context per event
#   sent    conn, t, n                             (the --send bytes / --send-file were queued)
#   data    conn, t, hex                           (bytes received, hex: MicroPython has no
#                                                   decode(errors="replace")); not sent when
#                                                   files are streamed (--send-file/--recv-file)
#   conn    one connection's summary (see Session._summary)
#   result  the final result: the first connection's summary fields (or the first failure's),
#           connections (all summaries), counters, elapsed_ms; mode "serve": counters only
# Keep this file MicroPython-compatible: no f-strings with nested quotes, no dataclasses/typing,
# nothing CPython-only at import time.
import sys

try:
    import json
except ImportError:  # pragma: no cover - every port we use has json
    import ujson as json

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

try:
    import hashlib
except ImportError:  # pragma: no cover - a port without hashlib reports no digests
    hashlib = None

from tcpip import errors
from tcpip.errors import errno_of
from tcpip import tcp as _tcp
from tcpip.clock import ticks_diff
from tcpip.socket import Socket
from tcpip.stack import Stack
from tcpip.tcp import TcpConfig
from tcpip.wire import ipv4

FINISH_MS = 2000        # after close(): how long the FIN exchange may take before we stop waiting
CHUNK = 4096            # file read / receive buffer, allocated once per exchange
MAX_ROUNDS = 10000000   # bound on the exchange loop (it is also bounded in time)


def endpoint(addr, port):
    return "%s:%d" % (ipv4.ntoa(addr), port)


def mac_text(mac):
    return ":".join("%02x" % b for b in mac)


def build_stack(device, cfg):
    """Stack over device from a config dict: addr, gateway, and the TcpConfig fields syn_retries,
    rx_buffer, tx_buffer (None or absent: the default)."""
    kw = {}
    for k in ("syn_retries", "rx_buffer", "tx_buffer"):
        if cfg.get(k) is not None:
            kw[k] = cfg[k]
    return Stack(device, addr=cfg["addr"], gateway=cfg.get("gateway"), tcp_config=TcpConfig(**kw))


def hex_digest(h):
    return binascii.hexlify(h.digest()).decode() if h is not None else None


def new_hash():
    return hashlib.sha256() if hashlib is not None else None


def rate(nbytes, ms):
    """{bytes, seconds, mb_per_s} for nbytes moved in ms milliseconds (MB = 10**6 bytes)."""
    if not nbytes:
        return {"bytes": 0, "seconds": 0.0, "mb_per_s": 0.0}
    ms = ms if ms > 0 else 1
    return {"bytes": nbytes, "seconds": ms / 1000, "mb_per_s": round(nbytes / 1000.0 / ms, 6)}


# -- the timeline's text (host_tools/cli.py's Reporter and firmware/net.py both print it) --------
def fmt_t(t):
    """A timeline time in ms: "12" or "12.5"; "?" when unknown."""
    if t is None:
        return "?"
    return ("%.1f" % t) if isinstance(t, float) and t != int(t) else "%d" % t


def event_text(m):
    """One timeline line for an "event" message."""
    ev = m["event"]
    t = fmt_t(m["t"])
    d = m.get("detail")
    if ev == "arp-request":
        return "ARP request: who has %s? sent at t=%s ms" % (d, t)
    if ev == "arp-resolved":
        return "ARP resolved %s at t=%s ms" % (d, t)
    if ev == "arp-failed":
        if d is not None:
            return "ARP failed: no reply from %s at t=%s ms" % (d, t)
        return "next hop unreachable (ARP failed) at t=%s ms: connect aborted" % t
    if ev == "connect":
        return "connect %s -> %s at t=%s ms: local port %s, ISN %s" % (
            m.get("local"), m.get("remote"), t, m.get("local", ":?").rsplit(":", 1)[1], m.get("isn"))
    if ev == "syn":
        if d == 1:
            return "SYN sent at t=%s ms (ISN %s, %s -> %s)" % (t, m.get("isn"), m.get("local"), m.get("remote"))
        return "SYN sent at t=%s ms (retransmission %d)" % (t, d - 1)
    if ev == "state":
        if d == "ESTABLISHED":
            rtt = m.get("rtt_ms")
            rtt_text = ("RTT %s ms" % rtt) if rtt is not None else "no RTT sample (SYN retransmitted: Karn)"
            return "SYN-ACK received at t=%s ms: ESTABLISHED (%s, MSS %s)" % (t, rtt_text, m.get("mss"))
        if d == "CLOSED" and m.get("error"):
            return "CLOSED at t=%s ms: %s" % (t, m["error"])
        return "state %s at t=%s ms" % (d, t)
    if ev == "icmp":
        return "ICMP error for our SYN at t=%s ms: %s" % (t, d)
    return "%s %s at t=%s ms" % (ev, "" if d is None else d, t)


def conn_lines(c, text, p=""):
    """The lines for a connection summary ("conn" message); text: what was received, decoded;
    p: a prefix for each line but the received text's ("[2] " with --count)."""
    out = []
    if c["result"] == "connected":
        rtt = c.get("rtt_ms")
        out.append(p + "connected: %s -> %s, ISN %s, RTT %s, connect took %s ms" % (
            c["local"], c["remote"], c["isn"], ("%s ms" % rtt) if rtt is not None else "n/a (Karn)",
            fmt_t(c["connect_ms"])))
        if c.get("ended"):
            how = {"peer-closed": "the peer closed", "timeout": "timeout (peer did not close)",
                   "error": "error %s" % c.get("exchange_error"), "recv-limit": "receive limit"}
            out.append(p + "exchange ended: %s; received %d bytes" % (
                how.get(c["ended"], c["ended"]),
                c.get("received_bytes", len(c.get("received_hex") or "") // 2)))
            tp = c.get("throughput")
            if tp:
                snd, rcv = tp["send"], tp["receive"]
                out.append(p + "throughput: sent %d bytes in %.3f s (%.3f MB/s%s); received %d bytes "
                           "in %.3f s (%.3f MB/s)" % (
                               snd["bytes"], snd["seconds"], snd["mb_per_s"],
                               ", all acknowledged" if snd.get("complete") else ", not all acknowledged",
                               rcv["bytes"], rcv["seconds"], rcv["mb_per_s"]))
            if c.get("sent_sha256"):
                out.append(p + "sent %s: sha256 %s" % (c.get("send_file"), c["sent_sha256"]))
            if c.get("recv_file"):
                out.append(p + "received into %s: sha256 %s" % (c["recv_file"], c.get("received_sha256")))
                text = ""
            if text:
                out.append("----- received -----")
                out.append(text.rstrip("\n"))
                out.append("--------------------")
        out.append(p + "closed (%s)" % c.get("final_state"))
    else:
        syns = c.get("syn_sent_ms") or []
        where = (" (local %s)" % c["local"]) if c.get("local") else ""
        if not syns:
            out.append(p + "connect failed: %s at t=%s ms, no SYN sent%s" % (
                c["result"], fmt_t(c["connect_ms"]), where))
        else:
            out.append(p + "connect failed: %s after %d SYN%s sent at t=%s ms; gave up at t=%s ms%s" % (
                c["result"], len(syns), "" if len(syns) == 1 else "s",
                ", ".join("%d" % s for s in syns) or "-", fmt_t(c["connect_ms"]), where))
    return out


class Session:
    """Drives one stack: connect() (repeated `count` times) with an optional exchange, or serve()."""

    def __init__(self, stack, emit, raw=False):
        self.stack = stack
        self.emit = emit
        # raw: the messages go to a consumer in this process (net.connect on a board): "data"
        # carries the byte count "n" and "conn" the received bytes themselves ("received": the
        # chunks as they came, a list of bytearrays), with no hex copies and no block of the
        # reply's size (a board's heap may not hold two or three times a reply, or one piece)
        self.raw = raw
        self.clock = stack.clock
        self.conn = 0
        self.tcb = None
        self.start_us = self.clock.ticks_us()
        self.start_ms = self.clock.ticks_ms()
        stack.trace = self._trace

    # -- timeline ------------------------------------------------------------------------------
    def _t(self):
        """Milliseconds (0.1 ms resolution) since the current connect began."""
        return ticks_diff(self.clock.ticks_us(), self.start_us) // 100 / 10

    def _trace(self, event, tcb, detail):
        if event == "connect":
            self.tcb = tcb
        elif tcb is not None and tcb is not self.tcb:
            return  # an earlier connection (TIME-WAIT ending, ...): not this timeline
        msg = {"type": "event", "conn": self.conn, "t": self._t(), "event": event}
        if detail is not None:
            msg["detail"] = detail
        if tcb is not None:
            if event == "connect" or event == "syn":
                msg["local"] = endpoint(tcb.local_addr, tcb.local_port)
                msg["remote"] = endpoint(tcb.remote_addr, tcb.remote_port)
                msg["isn"] = tcb.iss
            elif event == "icmp":
                msg["detail"] = errors.name(detail)
                msg["errno"] = detail
            elif event == "state":
                if detail == "ESTABLISHED":
                    msg["rtt_ms"] = tcb.first_rtt_ms if tcb.first_rtt_ms >= 0 else None
                    msg["mss"] = tcb.mss
                elif detail == "CLOSED" and tcb.error:
                    msg["error"] = errors.name(tcb.error)
        self.emit(msg)

    def start_message(self, runtime_extra=None):
        s = self.stack
        msg = {"type": "start", "runtime": sys.implementation.name, "mac": mac_text(s.mac),
               "addr": "%s/%d" % (ipv4.ntoa(s.route.addr), s.route.prefix_len),
               "gateway": ipv4.ntoa(s.route.gateway) if s.route.gateway is not None else None}
        if runtime_extra:
            for k in runtime_extra:
                msg[k] = runtime_extra[k]
        self.emit(msg)

    # -- connect -------------------------------------------------------------------------------
    def _summary(self, tcb, err, x, connect_ms):
        d = {"type": "conn", "conn": self.conn,
             "result": "connected" if not err else errors.name(err),
             "errno": err, "local": None, "remote": None, "isn": None, "syn_sent_ms": [],
             "rtt_ms": None, "srtt_ms": None, "mss": None, "connect_ms": connect_ms,
             "sent": x["sent"],
             "ended": x["ended"],
             "exchange_error": errors.name(x["error"]) if x["error"] else None,
             "final_state": None}
        if self.raw:
            d["received"] = x["received"]
        else:
            d["received_hex"] = binascii.hexlify(x["received"]).decode()
        if x["ended"] is not None:
            d["received_bytes"] = x["received_bytes"]
            d["received_sha256"] = x["received_sha256"]
            d["throughput"] = x["throughput"]
            if x["send_file"] is not None:
                d["send_file"] = x["send_file"]
                d["sent_sha256"] = x["sent_sha256"]
            if x["recv_file"] is not None:
                d["recv_file"] = x["recv_file"]
        if tcb is not None:
            d["local"] = endpoint(tcb.local_addr, tcb.local_port)
            d["remote"] = endpoint(tcb.remote_addr, tcb.remote_port)
            d["isn"] = tcb.iss
            d["syn_sent_ms"] = list(tcb.syn_times)
            d["rtt_ms"] = tcb.first_rtt_ms if tcb.first_rtt_ms >= 0 else None
            d["srtt_ms"] = tcb.srtt if tcb.srtt else None
            d["mss"] = tcb.mss if not err else None
            d["final_state"] = tcb.state_name()
        return d

    def connect_once(self, host, port, send=None, connect_timeout=None, exchange_timeout=10.0,
                     half_close=False, send_file=None, recv_file=None):
        """One connect (+ exchange); emits its events and returns its summary dict.

        The exchange runs when there is something to send (send bytes or send_file) or a
        recv_file: see _exchange."""
        stack = self.stack
        self.tcb = None
        self.start_us = self.clock.ticks_us()
        self.start_ms = self.clock.ticks_ms()
        s = Socket(stack)
        s.settimeout(connect_timeout)
        err = 0
        try:
            s.connect((host, port))
        except OSError as exc:
            err = errno_of(exc)
        tcb = self.tcb
        connect_ms = self._t()
        # raw: the reply as a list of the chunks as they came (no block of the reply's size, and
        # no growing one, which would need its old and new size at once)
        x = {"sent": 0, "received": [] if self.raw else bytearray(), "ended": None, "error": 0, "send_file": send_file,
             "recv_file": recv_file}
        if not err and (send is not None or send_file is not None or recv_file is not None):
            self._exchange(s.tcb, send, send_file, recv_file, exchange_timeout, half_close, x)
        try:
            s.close()  # FIN after what we queued (RST if data was left unread)
        except OSError:
            pass
        if tcb is not None and not err:
            def finished():
                st = tcb.state
                return st == _tcp.CLOSED or st == _tcp.TIME_WAIT

            stack.run_until(finished, FINISH_MS)
        summary = self._summary(tcb, err, x, connect_ms)
        self.emit(summary)
        return summary

    def _exchange(self, tcb, data, send_file, recv_file, timeout_s, half_close, x):
        """Send data (bytes) or the file send_file while receiving, until the peer closes, an error
        or timeout_s passes. After the last byte is queued the sending side is shut down when
        half_close or send_file. What arrives goes to recv_file, else into x["received"] (and,
        without files, to "data" messages). Fills x: sent, ended, error, received_bytes,
        received_sha256, sent_sha256, throughput. Streams through two preallocated buffers."""
        src = open(send_file, "rb") if send_file is not None else None
        dst = None
        try:
            dst = open(recv_file, "wb") if recv_file is not None else None
            self._stream(tcb, data, src, dst, timeout_s, half_close or src is not None,
                         src is None and dst is None, x)
        finally:
            if src is not None:
                src.close()
            if dst is not None:
                dst.close()

    def _stream(self, tcb, data, src, dst, timeout_s, shut_after, report_chunks, x):
        stack = self.stack
        clock = self.clock
        CLOSED = _tcp.CLOSED
        t0 = clock.ticks_ms()
        limit_ms = int(timeout_s * 1000)
        obuf = bytearray(CHUNK) if src is not None else None
        cur = obuf  # what tcb.send takes from: the file buffer, or the --send bytes
        ibuf = bytearray(CHUNK)
        imv = memoryview(ibuf)
        ofill = 0
        ooff = 0
        sent = 0
        got = 0
        shut = False
        send_ms = -1   # all data acknowledged at this time (ms after t0)
        last_rx_ms = 0
        tx_hash = new_hash() if src is not None else None
        rx_hash = new_hash()
        received = x["received"]
        # st: [source finished, peer's FIN taken, waiting for the last ACK]
        st = [data is None and src is None, False, False]

        def progress():
            if tcb.rx_len > 0 or tcb.state == CLOSED:
                return True
            if tcb.fin_received and not st[1]:
                return True
            if not st[0] and tcb.writable():
                return True
            return st[2] and tcb.tx_len == 0

        ended = "recv-limit"
        err = 0
        for _ in range(MAX_ROUNDS):
            # queue what the send ring takes
            while not st[0]:
                if ooff == ofill:
                    ooff = 0
                    if src is not None:
                        ofill = src.readinto(obuf) or 0
                        if ofill and tx_hash is not None:
                            tx_hash.update(memoryview(obuf)[0:ofill])
                    elif cur is None:
                        cur = data  # the --send bytes go straight from their own buffer
                        ofill = len(data)
                    else:
                        ofill = 0
                    if ofill == 0:
                        st[0] = True
                        if sent:
                            self.emit({"type": "sent", "conn": self.conn, "t": self._t(), "n": sent})
                        break
                n = tcb.send(cur, ooff, ofill - ooff)
                if n == 0:
                    break
                ooff += n
                sent += n
            if st[0] and shut_after and not shut:
                tcb.shutdown_write()
                shut = True
            now = ticks_diff(clock.ticks_ms(), t0)
            if st[0] and send_ms < 0 and tcb.tx_len == 0 and not tcb.error:
                send_ms = now  # everything we queued is acknowledged
            # take what arrived
            while True:
                n = tcb.recv_into(ibuf, 0, CHUNK)
                if n == 0:
                    break
                got += n
                last_rx_ms = now
                chunk = imv[0:n]
                if rx_hash is not None:
                    rx_hash.update(chunk)
                if dst is not None:
                    dst.write(chunk)
                elif self.raw:
                    received.append(bytearray(chunk))
                    if report_chunks:
                        self.emit({"type": "data", "conn": self.conn, "t": self._t(), "n": n})
                else:
                    received.extend(chunk)
                    if report_chunks:
                        self.emit({"type": "data", "conn": self.conn, "t": self._t(),
                                   "hex": binascii.hexlify(chunk).decode()})
            if tcb.state == CLOSED:
                if tcb.error:
                    ended = "error"
                    err = tcb.error
                else:
                    ended = "peer-closed"
                break
            if tcb.fin_received and tcb.rx_len == 0:
                st[1] = True
                if st[0] and (tcb.tx_len == 0 or not sent):
                    ended = "peer-closed"
                    break
            left = limit_ms - now
            if left <= 0:
                ended = "timeout"
                break
            st[2] = st[0] and send_ms < 0 and sent > 0
            stack.run_until(progress, left if left < 1000 else 1000)
        end_ms = ticks_diff(clock.ticks_ms(), t0)
        x["sent"] = sent
        x["ended"] = ended
        x["error"] = err
        x["received_bytes"] = got
        x["received_sha256"] = hex_digest(rx_hash)
        x["sent_sha256"] = hex_digest(tx_hash)
        x["throughput"] = {"send": rate(sent, send_ms if send_ms >= 0 else end_ms),
                           "receive": rate(got, last_rx_ms)}
        x["throughput"]["send"]["complete"] = send_ms >= 0

    def connect(self, host, port, send=None, connect_timeout=None, exchange_timeout=10.0,
                half_close=False, count=1, send_file=None, recv_file=None):
        """count connects in a row; emits and returns the final result dict."""
        t0 = self.clock.ticks_ms()
        conns = []
        for i in range(count):
            self.conn = i
            conns.append(self.connect_once(host, port, send, connect_timeout, exchange_timeout,
                                           half_close, send_file, recv_file))
        first_bad = None
        for c in conns:
            if c["result"] != "connected" or c["exchange_error"]:
                first_bad = c
                break
        main = first_bad if first_bad is not None else conns[0]
        result = {}
        for k in main:
            result[k] = main[k]
        result["type"] = "result"
        result["mode"] = "connect"
        result["count"] = count
        result["connected"] = len([c for c in conns if c["result"] == "connected"])
        result["connections"] = conns
        result["counters"] = self.stack.counters.nonzero()
        result["elapsed_ms"] = ticks_diff(self.clock.ticks_ms(), t0)
        self.emit(result)
        return result

    # -- serve ---------------------------------------------------------------------------------
    def serve(self, seconds, stop=None):
        """Poll the stack (answering ARP and ping) for `seconds` or until stop() is true."""
        t0 = self.clock.ticks_ms()
        self.emit({"type": "ready"})

        def done():
            return stop is not None and stop()

        self.stack.run_until(done, int(seconds * 1000))
        result = {"type": "result", "mode": "serve", "counters": self.stack.counters.nonzero(),
                  "elapsed_ms": ticks_diff(self.clock.ticks_ms(), t0), "result": "served"}
        self.emit(result)
        return result


# -- MicroPython entry point -------------------------------------------------------------------
def _emit_line(msg):
    print(json.dumps(msg))  # the unix port writes stdout unbuffered: one line per message


emit_line = _emit_line


def _stdin_closed_check():
    """A stop() for serve mode: true once stdin is readable (the CLI closes it to stop us)."""
    import select

    p = select.poll()
    p.register(sys.stdin, select.POLLIN)

    def closed():
        return len(p.poll(0)) > 0

    return closed


def main(argv=None):
    """micropython connect_main.py [CONFIG_JSON] -- without the argument, the config is the first
    line of stdin (the CLI's way: this unix port dies with "FATAL: uncaught NLR" on any argv
    string of 256 characters or more). CONFIG: see host_tools/cli.py (_config)."""
    argv = sys.argv if argv is None else argv
    if len(argv) > 2:
        print("usage: micropython connect_main.py [CONFIG_JSON]   (else: config on stdin's first line)")
        sys.exit(2)
    cfg = json.loads(argv[1] if len(argv) == 2 else sys.stdin.readline())
    from udp_device import UdpFrameDevice

    dev = UdpFrameDevice(cfg["bridge_port"], mtu=cfg.get("mtu", 1500))
    try:
        run_config(build_stack(dev, cfg), cfg, {"bridge_port": cfg["bridge_port"]})
    finally:
        dev.close()


def run_config(stack, cfg, start_extra=None, emit=None):
    """The session a config asks for (connect or serve) on stack, messages to emit (default: JSON
    lines on stdout). Shared with the virtual board (virtual_board.py)."""
    session = Session(stack, emit if emit is not None else _emit_line)
    session.start_message(start_extra)
    if cfg["mode"] == "serve":
        session.serve(cfg["seconds"], _stdin_closed_check() if cfg.get("watch_stdin") else None)
    else:
        send = cfg.get("send_hex")
        send = binascii.unhexlify(send) if send is not None else None
        session.connect(cfg["host"], cfg["port"], send, cfg.get("connect_timeout"),
                        cfg.get("exchange_timeout", 10.0), cfg.get("half_close", False),
                        cfg.get("count", 1), cfg.get("send_file"), cfg.get("recv_file"))


if __name__ == "__main__":
    main()
