# REPL helpers for a board running tcpip (docs/BOARDS.md). Installed as /lib/net.mpy.
#
#   >>> import net
#   >>> net.up()                      # board, address, DNS from /tcpip_config.py (main.py does this)
#   >>> net.status()                  # board, link, address, gateway, DNS, lease, counters
#   >>> net.connect("example.com", 80, "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")
#   >>> net.serve(30)                 # answer ARP and ping for 30 s
#
# net.connect prints the same timeline as `python -m host_tools connect` on the host: it runs the
# same Session (firmware/connect_main.py, installed as /lib/connect_main.mpy) and formats its
# messages the way host_tools/cli.py's Reporter does. What it receives is kept in RAM (and printed
# at the end): fetch large things with tcpip.socket directly.
#
# /tcpip_config.py (written by `python -m host_tools deploy`, edit it and press Ctrl-D):
#   BOARD = "w5500_evb_pico"   # boards/<BOARD>.py
#   ADDR = None                # "192.168.1.50/24" for a static address; None: DHCP
#   GATEWAY = None             # with ADDR
#   DNS = None                 # ["192.168.1.1"]: servers (default: the DHCP server's)
#   HOSTNAME = None            # sent to the DHCP server (option 12)
#   AUTOSTART = True           # main.py brings the network up at boot
try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

from tcpip.board import BoardError, bring_up, mac_text
from tcpip.clock import ticks_diff
from tcpip.wire import ipv4

CONFIG_MODULE = "tcpip_config"
DEFAULTS = {"BOARD": None, "ADDR": None, "GATEWAY": None, "DNS": None, "HOSTNAME": None,
            "AUTOSTART": True, "LINK_TIMEOUT_MS": 5000, "DHCP_TIMEOUT_MS": 15000}

stack = None   # the running Stack after up()
last = None    # the result dict of the last connect()


def config():
    """The settings of /tcpip_config.py merged over DEFAULTS (a dict; "_missing" when no file)."""
    out = dict(DEFAULTS)
    try:
        mod = __import__(CONFIG_MODULE)
    except ImportError:
        out["_missing"] = True
        return out
    for k in DEFAULTS:
        v = getattr(mod, k, None)
        if v is not None:
            out[k] = v
    return out


def up(board=None, addr=None, gateway=None, dns=None, hostname=None, dhcp=True, quiet=False, **kw):
    """Bring the board's chip and the stack up; arguments override /tcpip_config.py. Returns the
    Stack (also net.stack and tcpip.socket's default). Raises BoardError with what to check."""
    global stack
    cfg = config()
    board = board if board is not None else cfg["BOARD"]
    if board is None:
        raise BoardError("no board: net.up('w5500_evb_pico') or BOARD = '...' in /tcpip_config.py "
                         "(python -m host_tools deploy --board NAME writes it)")
    if addr is None:  # the config's static address (also with dhcp=False: nothing overrides it)
        addr = cfg["ADDR"]
        gateway = gateway if gateway is not None else cfg["GATEWAY"]
    kw.setdefault("link_timeout_ms", cfg["LINK_TIMEOUT_MS"])
    kw.setdefault("timeout_ms", cfg["DHCP_TIMEOUT_MS"])
    stack = None
    stack = bring_up(board, dhcp=dhcp, addr=addr, gateway=gateway,
                     dns=dns if dns is not None else cfg["DNS"],
                     hostname=hostname if hostname is not None else cfg["HOSTNAME"],
                     log=None if quiet else _say, **kw)
    return stack


def boot():
    """What main.py runs: up() from /tcpip_config.py; prints (never raises) a failure."""
    cfg = config()
    if cfg.get("_missing"):
        _say("tcpip: no /tcpip_config.py; run `python -m host_tools deploy --board NAME` on the host, "
             "or net.up('w5500_evb_pico') here")
        return None
    if not cfg["AUTOSTART"]:
        _say("tcpip: AUTOSTART is off in /tcpip_config.py; net.up() brings the network up")
        return None
    try:
        return up()
    except Exception as exc:  # BoardError, driver errors, a bad ADDR: the REPL stays usable
        _say("tcpip: bring-up failed: %s%s" % (
            "" if isinstance(exc, OSError) else type(exc).__name__ + ": ", exc))
        _say("tcpip: fix it (or /tcpip_config.py), then net.up()")
        return None


def _need_stack():
    if stack is None:
        raise BoardError("the network is down: net.up() first")
    return stack


def _say(text):
    print(text)


def _ntoa(a):
    return ipv4.ntoa(a) if a is not None else None


def status():
    """Print the board, link, address, gateway, DNS servers, DHCP lease and counters."""
    s = stack
    if s is None:
        _say("network down: net.up()")
        return
    nic = s.device
    board = getattr(s, "board", None)
    link = getattr(nic, "link_up", None)
    r = s.route
    _say("board    %s (%s)" % (getattr(board, "BOARD", "?"), getattr(board, "CHIP", "?")))
    _say("mac      %s" % mac_text(s.mac))
    _say("link     %s" % (("up" if link() else "DOWN") if link is not None else "unknown"))
    if r.configured():
        _say("address  %s/%d" % (_ntoa(r.addr), r.prefix_len))
    else:
        _say("address  none")
    _say("gateway  %s" % (_ntoa(r.gateway) or "none"))
    servers = getattr(s, "dns_servers", None) or []
    _say("dns      %s" % (" ".join(_ntoa(d) for d in servers) if servers else "none"))
    d = getattr(s, "dhcp", None)
    if d is not None:
        _say("dhcp     %s" % _lease_text(d, s.clock))
    else:
        _say("dhcp     off (static address)")
    _say("counters " + _pairs(s.counters.nonzero()))
    nc = getattr(nic, "counters", None)
    if nc is not None:
        _say("chip     " + _pairs(nc if isinstance(nc, dict) else _attrs(nc)))


def _lease_text(d, clock):
    """What the DHCP client tells about its lease (state, server, lease left): best effort."""
    parts = []
    st = getattr(d, "state_name", None)
    st = st() if callable(st) else getattr(d, "state", None)
    if st is not None:
        parts.append("state %s" % st)
    server = getattr(d, "server", None)
    if server is not None:
        parts.append("server %s" % (server if isinstance(server, str) else _ntoa(server)))
    lease = getattr(d, "lease_s", None)
    if lease is not None:
        parts.append("lease %d s" % lease)
    return ", ".join(parts) if parts else "on"


def _attrs(obj):
    out = {}
    for k in dir(obj):
        if k[0] != "_":
            v = getattr(obj, k)
            if isinstance(v, int) and not isinstance(v, bool):
                out[k] = v
    return out


def _pairs(d):
    keys = sorted(k for k in d if d[k])
    return " ".join("%s=%s" % (k, d[k]) for k in keys) if keys else "(all zero)"


# -- connect: the host CLI's timeline --------------------------------------------------------------
def _text(hex_text):
    """The received bytes as text, undecodable bytes as U+FFFD (as the CLI's errors='replace')."""
    raw = binascii.unhexlify(hex_text or "")
    try:
        return raw.decode()
    except UnicodeError:
        return "".join(chr(b) if b < 0x80 else "\ufffd" for b in raw)


def _lines(pieces):
    """The lines of the bytes in pieces (bytearrays, in order), without their newlines: views
    into the pieces, or a copy of just the line when one spans two of them."""
    carry = None
    for p in pieces:
        mv = memoryview(p)
        n = len(p)
        a = 0
        while a < n:
            b = p.find(b"\n", a)
            if b < 0:
                if carry is None:
                    carry = bytearray(mv[a:n])
                else:
                    carry.extend(mv[a:n])
                break
            if carry is None:
                yield mv[a:b]
            else:
                carry.extend(mv[a:b])
                yield carry
                carry = None
            a = b + 1
    if carry is not None:
        yield carry


def _rows(pieces):
    """(offset, up to 16 bytes) over the bytes in pieces, for a hex dump."""
    row = bytearray(16)
    k = 0
    off = 0
    for p in pieces:
        for c in p:
            row[k] = c
            k += 1
            if k == 16:
                yield off, row
                off += 16
                k = 0
    if k:
        yield off, memoryview(row)[0:k]


def _show(raw, say):
    """The received bytes (a bytearray, or the list of chunks net.connect's Session keeps) a
    line at a time, never joined: UTF-8 text line by line (each decoded from a view: one line's
    size at a time), anything else (not UTF-8, or with NUL bytes) as a hex dump of 16 bytes a
    line. Trailing newlines are left off (as the CLI's text.rstrip("\n"))."""
    pieces = raw if isinstance(raw, list) else [raw]
    text = True
    for p in pieces:
        if p.find(b"\0") >= 0:
            text = False
            break
    if text:
        for line in _lines(pieces):
            try:
                str(line, "utf-8")
            except UnicodeError:
                text = False
                break
    if text:
        empty = 0  # empty lines are said once a line with text follows them (rstrip("\n"))
        for line in _lines(pieces):
            if not len(line):
                empty += 1
                continue
            for _ in range(empty):
                say("")
            empty = 0
            say(str(line, "utf-8"))
        return
    for off, row in _rows(pieces):
        say("%04x  %-47s  |%s|" % (off, binascii.hexlify(row, " ").decode(),
                                    "".join(chr(c) if 32 <= c < 127 else "." for c in row)))


class Timeline:
    """Session messages -> the CLI's timeline lines, handed to out(line) (print by default)."""

    def __init__(self, host, port, send_text=None, where="board", out=None):
        self.host = host
        self.port = port
        self.send_text = send_text
        self.where = where
        self.out = out if out is not None else _say
        self.result = None

    def feed(self, msg):
        from connect_main import conn_lines, event_text, fmt_t  # the CLI's own wording

        kind = msg.get("type")
        say = self.out
        if kind == "start":
            say("tcpip %s: %s mac %s%s on %s -> connect %s:%d" % (
                msg.get("runtime"), msg.get("addr"), msg.get("mac"),
                (" gw " + msg["gateway"]) if msg.get("gateway") else "", self.where, self.host, self.port))
        elif kind == "event":
            say(event_text(msg))
        elif kind == "sent":
            text = self.send_text if self.send_text is not None else ""
            say("sent %d bytes at t=%s ms: %r" % (msg["n"], fmt_t(msg["t"]), text))
        elif kind == "data":
            n = msg["n"] if "n" in msg else len(msg["hex"]) // 2
            say("received %d bytes at t=%s ms" % (n, fmt_t(msg["t"])))
        elif kind == "conn":
            raw = msg.get("received")
            if raw is None:  # a message from the CLI's Session (tests): the reply as hex
                for line in conn_lines(msg, _text(msg.get("received_hex"))):
                    say(line)
                return
            # net.connect's own Session (raw=True): the reply shown from the bytes themselves
            lines = conn_lines(msg, "")
            closed = lines.pop() if msg["result"] == "connected" else None
            for line in lines:
                say(line)
            if closed is not None:
                if msg.get("received_bytes") and msg.get("ended") and not msg.get("recv_file"):
                    say("----- received -----")
                    _show(raw, say)
                    say("--------------------")
                say(closed)
        elif kind == "result":
            self.result = msg
            c = msg.get("counters", {})
            say("counters: " + " ".join("%s=%s" % (k, c[k]) for k in sorted(c)))


def _elapsed_ms(clock, t0):
    return ticks_diff(clock.ticks_ms(), t0)


def connect(host, port, send=None, timeout=10.0, connect_timeout=None, half_close=False, out=None):
    """Connect to host:port (a name goes through DNS first), send `send` (str or bytes) and print
    what comes back until the peer closes or `timeout` s pass; prints the CLI's timeline. Returns
    True when connected (and the exchange ended without error); the result dict is net.last."""
    global last
    from connect_main import Session
    from tcpip import socket as tsocket

    s = _need_stack()
    say = out if out is not None else _say
    try:
        ipv4.aton(host)
        ip = host
    except ValueError:
        t0 = s.clock.ticks_ms()
        try:
            ip = tsocket.getaddrinfo(host, port)[0][-1][0]
        except OSError as exc:
            say("DNS: cannot resolve %s: %s" % (host, exc))
            return False
        say("DNS: %s is %s (%d ms)" % (host, ip, _elapsed_ms(s.clock, t0)))
    if isinstance(send, str):
        send_text = send
        send = send.encode()
    elif send is not None:
        send = bytes(send)
        try:
            send_text = send.decode()
        except UnicodeError:
            send_text = _text(binascii.hexlify(send))
    else:
        send_text = None
    board = getattr(s, "board", None)
    tl = Timeline(ip, port, send_text, getattr(board, "BOARD", "board"), say)
    session = Session(s, tl.feed, raw=True)
    try:
        session.start_message()
        session.connect(ip, port, send, connect_timeout, timeout, half_close)
    finally:
        s.trace = None  # Session set it: no timeline work outside connect()
    last = tl.result
    r = last or {}
    return r.get("result") == "connected" and not r.get("exchange_error")


def serve(seconds=60):
    """Keep the stack answering ARP and ping (and DHCP renewing) for `seconds`; Ctrl-C stops."""
    s = _need_stack()

    def never():
        return False

    try:
        s.run_until(never, int(seconds * 1000))
    except KeyboardInterrupt:
        pass
    _say("counters " + _pairs(s.counters.nonzero()))

