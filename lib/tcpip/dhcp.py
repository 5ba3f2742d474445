"""DHCP client (RFC 2131, options RFC 2132) for the stack's one interface.

    dhcp = DhcpClient(stack, hostname="board")
    if dhcp.run(30000):            # start() + stack.run_until(bound), True once BOUND
        print(dhcp.addr, dhcp.gateway, stack.dns_servers)

After run() returns, stack.poll() (any socket call, run_until, the poller) keeps the lease: it
renews at T1, rebinds at T2, and at expiry unconfigures the stack and starts again from INIT.

States (RFC 2131 4.4, figure 5): STOPPED (not started, or after stop()/release()), INIT (on the
way to SELECTING; it waits there only after a DECLINE), SELECTING (DISCOVER sent, waiting for an
OFFER: the first acceptable one is taken), REQUESTING (broadcast REQUEST for the offer), BOUND,
RENEWING (at T1: REQUEST unicast to the server), REBINDING (at T2: REQUEST broadcast).
REBOOTING (INIT-REBOOT, RFC 2131 3.2: the stack saw the link come back, reboot(): a broadcast
REQUEST for the address we hold, no server identifier; ACK -> BOUND, NAK -> INIT, no answer after
`tries` -> the old lease goes on). A board that resets starts from INIT: it keeps no lease.

Timers, all through the stack's clock with ticks_diff:
- SELECTING and REQUESTING retransmit after 4, 8, 16, 32, 64 s, each +-1 s at random (RFC 2131
  4.1), `tries` (5) transmissions in all; then the exchange is abandoned and the client starts
  again from INIT with a new xid (counted dhcp_restart). base_ms (4000) scales the whole series
  (the cap is 16 x base_ms, the jitter base_ms / 4 unless jitter_ms is given) so tests can be quick.
- The lease runs from the moment the acknowledged REQUEST was sent (RFC 2131 4.4.1). T1 and T2
  come from options 58/59, else 0.5 and 0.875 of the lease (RFC 2131 4.4.5); values that are not
  T1 < T2 < lease fall back to those defaults. Lease times are kept in whole seconds counted from
  the tick clock, so leases longer than the 2**29 ms tick horizon (6.2 days) work.
- In RENEWING/REBINDING a REQUEST is retransmitted after half the time left until T2 / the end of
  the lease, at least renew_min_s (60) seconds (RFC 2131 4.4.5). A 0xFFFFFFFF lease never expires.
- A NAK (matching xid) in REQUESTING, RENEWING or REBINDING unconfigures and restarts from INIT
  at once (dhclient does the same).

What an ACK applies: the address and prefix (option 1; a missing or non-contiguous mask falls
back to the classful prefix, and so does /32: the stack has one on-link prefix and no host routes,
so a /32 lease's router could not be reached; /31 is kept, RFC 3021), the first router (option 3;
ignored and counted when it is not on the new subnet) as gateway, up to three DNS servers (option
6) as stack.dns_servers (which tcpip.dns.Resolver uses by default).

Addresses that cannot be ours: an OFFER or ACK whose yiaddr is in 0/8 ("this network", 0.0.0.0
among them), 127/8, 224/4 (multicast) or 240/4 (reserved, 255.255.255.255 among them), or is the
network or broadcast address of the prefix it would get (its own mask's, as above; a /31 has
neither), is refused, counted dhcp_bad_address. An OFFER: ignored, SELECTING goes on (the DISCOVER
series continues, any sane OFFER is still taken). An ACK in REQUESTING: DHCPDECLINE (broadcast,
with the address and the server identifier: RFC 2131 4.4.1, table 5; the server marks the address
unusable), counted dhcp_decline, then INIT and a new DISCOVER after 10 s (2.5 x base_ms; RFC 2131
3.1.5: at least ten seconds, against a loop with a server that keeps answering so). An ACK in
RENEWING or REBINDING: ignored, the lease we hold goes on (renewals, then expiry).

Messages carry the client identifier (option 61: type 1 + MAC unless client_id is given), the
hostname (option 12) when given, and the parameter request list 1, 3, 6, 51, 58, 59 (neither in
RELEASE and DECLINE); they are padded to the 300-byte BOOTP minimum (RFC 1542 2.1). The broadcast
flag is clear by default: the stack accepts unicast UDP to our MAC and port 68 while unconfigured
(RFC 2131 4.1). The server's reply must match xid and chaddr; options in sname/file (overload,
option 52) are not read.
Not implemented: ARP probing of the offered address before use (a DECLINE is sent only for the
addresses above), DHCPINFORM, INIT-REBOOT, relay agents' options, and more than one interface.
release() sends a DHCPRELEASE.

Events go to stack.trace("dhcp", None, text) when a trace is set; counters dhcp_* count the rest.
"""
import os

from tcpip import mem
from tcpip.clock import ticks_add, ticks_diff
from tcpip.route import ZERO
from tcpip.udp import PAYLOAD
from tcpip.wire import ipv4

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into self.cnt, this layer's own list (NAMES below; tests/host/test_counters.py)
_DHCP_TX = const(0)
_DHCP_RX = const(1)
_DHCP_DROP_MALFORMED = const(2)
_DHCP_DROP_NOT_OURS = const(3)
_DHCP_DROP_STATE = const(4)
_DHCP_OFFER = const(5)
_DHCP_ACK = const(6)
_DHCP_NAK = const(7)
_DHCP_RETRANSMIT = const(8)
_DHCP_RESTART = const(9)
_DHCP_RENEW = const(10)
_DHCP_REBIND = const(11)
_DHCP_LEASE_EXPIRED = const(12)
_DHCP_GATEWAY_IGNORED = const(13)
_DHCP_BAD_ADDRESS = const(14)
_DHCP_DECLINE = const(15)
_DHCP_REBOOT = const(16)

SERVER_PORT = const(67)
CLIENT_PORT = const(68)

# states
STOPPED = const(0)
INIT = const(1)
SELECTING = const(2)
REQUESTING = const(3)
BOUND = const(4)
RENEWING = const(5)
REBINDING = const(6)
REBOOTING = const(7)  # INIT-REBOOT's REQUEST is out (the link came back): the lease still in use
STATE_NAMES = ("STOPPED", "INIT", "SELECTING", "REQUESTING", "BOUND", "RENEWING", "REBINDING", "REBOOTING")

# message types (option 53, RFC 2132 9.6)
DISCOVER = const(1)
OFFER = const(2)
REQUEST = const(3)
DECLINE = const(4)
ACK = const(5)
NAK = const(6)
RELEASE = const(7)
INFORM = const(8)
_TYPE_NAMES = ("?", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM")

# options (RFC 2132)
OPT_PAD = const(0)
OPT_SUBNET_MASK = const(1)
OPT_ROUTER = const(3)
OPT_DNS = const(6)
OPT_HOSTNAME = const(12)
OPT_REQUESTED_IP = const(50)
OPT_LEASE_TIME = const(51)
OPT_MSG_TYPE = const(53)
OPT_SERVER_ID = const(54)
OPT_PARAMS = const(55)
OPT_T1 = const(58)
OPT_T2 = const(59)
OPT_CLIENT_ID = const(61)
OPT_END = const(255)
PARAMS = bytes((OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_LEASE_TIME, OPT_T1, OPT_T2))

# message layout (RFC 2131 2, figure 1): offsets from the start of the BOOTP message
OP = const(0)
HTYPE = const(1)
HLEN = const(2)
XID = const(4)
SECS = const(8)
FLAGS = const(10)
CIADDR = const(12)
YIADDR = const(16)
SIADDR = const(20)
GIADDR = const(24)
CHADDR = const(28)
COOKIE = const(236)
OPTIONS = const(240)
MAGIC = b"\x63\x82\x53\x63"  # RFC 2131 3: 99.130.83.99
_BOOTP_MIN = const(300)  # RFC 1542 2.1: relays may drop shorter BOOTP messages
_FLAG_BROADCAST = const(0x80)  # high bit of the flags field (first byte)
_MAX_DNS = const(3)
_INFINITE = const(-1)


def prefix_from_mask(buf, off):
    """Prefix length of a contiguous netmask at buf[off:off+4], or -1 if it is not contiguous."""
    plen = 0
    ones = True
    for i in range(4):
        b = buf[off + i]
        for bit in range(7, -1, -1):
            if b >> bit & 1:
                if not ones:
                    return -1
                plen += 1
            else:
                ones = False
    return plen


def classful_prefix(addr, off=0):
    a = addr[off]
    return 8 if a < 128 else 16 if a < 192 else 24


def lease_prefix(buf, yoff, o_mask):
    """The prefix a lease of the address at buf[yoff] gets: its mask (option 1 at o_mask, -1 when
    absent); the classful prefix when there is none, it is not contiguous, or it is /32."""
    plen = prefix_from_mask(buf, o_mask) if o_mask >= 0 else -1
    if plen < 0 or plen > 31:
        plen = classful_prefix(buf, yoff)
    return plen


def usable_address(buf, off, plen):
    """Whether buf[off:off+4] can be our address on a /plen: not in 0/8, 127/8, 224/4 or 240/4,
    nor the network or broadcast address of its prefix (a /31 has neither: RFC 3021)."""
    a = buf[off]
    if a == 0 or a == 127 or a >= 224:
        return False
    if plen > 30:
        return True
    zeros = ones = True
    for i in range(4):
        bits = plen - 8 * i  # network bits in this byte
        hm = 0 if bits >= 8 else 0xFF if bits <= 0 else 0xFF >> bits
        h = buf[off + i] & hm
        if h:
            zeros = False
        if h != hm:
            ones = False
    return not (zeros or ones)


def _u32_seconds(buf, off):
    """A 32-bit seconds field; 0xFFFFFFFF is _INFINITE. Values past 2**30 are capped there (a
    small int on every port: 34 years)."""
    if buf[off] == 0xFF and buf[off + 1] == 0xFF and buf[off + 2] == 0xFF and buf[off + 3] == 0xFF:
        return _INFINITE
    if buf[off] >= 0x40:
        return 0x3FFFFFFF
    return buf[off] << 24 | buf[off + 1] << 16 | buf[off + 2] << 8 | buf[off + 3]


# this client's counters (stack.counters.dhcp_*)
NAMES = (
    "dhcp_tx dhcp_rx dhcp_drop_malformed dhcp_drop_not_ours dhcp_drop_state dhcp_offer dhcp_ack "
    "dhcp_nak dhcp_retransmit dhcp_restart dhcp_renew dhcp_rebind dhcp_lease_expired "
    "dhcp_gateway_ignored dhcp_bad_address dhcp_decline dhcp_reboot"
)


class DhcpClient:
    def __init__(self, stack, hostname=None, client_id=None, base_ms=4000, tries=5, jitter_ms=None,
                 renew_min_s=60, broadcast_flag=False):
        self.cnt = stack.counters.extend(NAMES)
        self.stack = stack
        if isinstance(hostname, str):
            hostname = hostname.encode()
        if hostname is not None and not 0 < len(hostname) <= 255:
            raise ValueError("hostname must be 1..255 bytes")
        self.hostname = hostname
        if client_id is None:
            client_id = b"\x01" + bytes(stack.mac)  # RFC 2132 9.14: hardware type 1 + MAC
        if not 2 <= len(client_id) <= 255:
            raise ValueError("client_id must be 2..255 bytes")
        self.client_id = bytes(client_id)
        self.base_ms = base_ms
        self.max_backoff_ms = base_ms * 16  # 4 s base -> 64 s (RFC 2131 4.1)
        self.jitter_ms = base_ms // 4 if jitter_ms is None else jitter_ms
        self.tries = tries
        self.renew_min_s = renew_min_s
        self.broadcast_flag = broadcast_flag
        self.state = STOPPED
        self.xid = bytearray(4)
        self.server = bytearray(4)  # server identifier (option 54) of the offer / lease
        self.offered = bytearray(4)
        self.addr = None  # bytes of the leased address while bound, else None
        self.prefix_len = 0
        self.gateway = None
        self.dns = []
        self.lease_s = 0
        self.t1_s = 0
        self.t2_s = 0
        self._began = 0  # ticks: start of this acquisition (the secs field)
        self._sends = 0  # transmissions of the current message
        self._retx_at = 0  # ticks: next retransmission in SELECTING / REQUESTING
        self._req_sent = 0  # ticks: last REQUEST sent (the lease starts there on ACK)
        self._mark = 0  # ticks: lease clock, whole seconds folded into _elapsed_s
        self._elapsed_s = 0
        self._next_s = 0  # RENEWING/REBINDING: next retransmission, in lease seconds

    # -- control ---------------------------------------------------------------------------------
    def start(self):
        """Begin (or restart) acquisition from INIT: send a DISCOVER now."""
        s = self.stack
        if not s.udp.is_bound(CLIENT_PORT):
            s.udp.bind(CLIENT_PORT, self._input)
        s.udp.add_timer(self)
        s.dhcp = self  # the stack asks it to confirm the lease when the link comes back
        self._init(s.clock.ticks_ms())

    def stop(self):
        """Forget the lease (the stack keeps its address; release() gives it up), stop timers."""
        s = self.stack
        s.udp.unbind(CLIENT_PORT)
        s.udp.remove_timer(self)
        self._set_state(STOPPED)

    def release(self):
        """Send a DHCPRELEASE to the server (if bound), unconfigure the stack, stop."""
        if self.bound():
            self._new_xid()
            n = self._build(RELEASE, True, False, True)
            self._send(n, self.server)
            self._unconfigure()
        self.stop()

    def bound(self):
        st = self.state
        return st == BOUND or st == RENEWING or st == REBINDING or st == REBOOTING

    def reboot(self):
        """The link came back: confirm the lease we hold (RFC 2131 3.2, 4.3.2 INIT-REBOOT), a
        REQUEST broadcast with our address as the requested IP, no server identifier, ciaddr 0.
        ACK: bound with the new lease; NAK: INIT (the address goes); no answer after `tries`:
        the old lease goes on (RFC 2131 3.2 allows using it for the rest of its time). Without a
        lease: a DISCOVER at once."""
        if self.state == STOPPED:
            return
        now = self.stack.clock.ticks_ms()
        self.cnt[_DHCP_REBOOT] += 1
        if self.addr is None:
            self._init(now)
            return
        self._new_xid()
        self._began = now
        self._sends = 0
        mem.copy(self.offered, 0, self.addr, 0, 4)
        self._set_state(REBOOTING)
        self._send_select_request(now, False)

    def run(self, timeout_ms=30000):
        """start() unless running, then service the stack until bound: True, or False after
        timeout_ms (the client keeps trying in the background while the stack is polled)."""
        if self.state == STOPPED:
            self.start()
        return self.stack.run_until(self.bound, timeout_ms)

    def state_name(self):
        return STATE_NAMES[self.state]

    # -- timers (called by stack.poll through stack.udp) -----------------------------------------
    def poll(self, now=None):
        if now is None:
            now = self.stack.clock.ticks_ms()
        st = self.state
        if st == SELECTING or st == REQUESTING or st == REBOOTING:
            if ticks_diff(now, self._retx_at) >= 0:
                self._retransmit(now)
        elif st == INIT:
            if ticks_diff(now, self._retx_at) >= 0:
                self._init(now)  # the wait after a DECLINE is over
        elif st == BOUND or st == RENEWING or st == REBINDING:
            self._lease_clock(now)
            e = self._elapsed_s
            if self.lease_s != _INFINITE and e >= self.lease_s:
                self.cnt[_DHCP_LEASE_EXPIRED] += 1
                self._event("lease expired")
                self._unconfigure()
                self._init(now)
            elif self.lease_s == _INFINITE:
                return
            elif st != REBINDING and e >= self.t2_s:
                self.cnt[_DHCP_REBIND] += 1
                self._set_state(REBINDING)
                self._new_xid()
                self._lease_request(now)
            elif st == BOUND and e >= self.t1_s:
                self.cnt[_DHCP_RENEW] += 1
                self._set_state(RENEWING)
                self._new_xid()
                self._lease_request(now)
            elif st != BOUND and e >= self._next_s:
                self.cnt[_DHCP_RETRANSMIT] += 1
                self._lease_request(now)

    def next_deadline(self, now, best):
        st = self.state
        if st == SELECTING or st == REQUESTING or st == INIT or st == REBOOTING:
            d = ticks_diff(self._retx_at, now)
            return d if d < best else best
        if (st == BOUND or st == RENEWING or st == REBINDING) and self.lease_s != _INFINITE:
            target = self.lease_s
            if st != REBINDING and self.t2_s < target:
                target = self.t2_s
            if st == BOUND and self.t1_s < target:
                target = self.t1_s
            if st != BOUND and self._next_s < target:
                target = self._next_s
            left_s = target - self._elapsed_s
            if left_s > 1000:
                return best  # far away (and keeps the product below small-int range)
            d = left_s * 1000 - ticks_diff(now, self._mark)
            return d if d < best else best
        return best

    def _lease_clock(self, now):
        d = ticks_diff(now, self._mark)
        if d >= 1000:
            k = d // 1000
            self._elapsed_s += k
            self._mark = ticks_add(self._mark, k * 1000)

    def _backoff(self, now):
        wait = self.base_ms << (self._sends - 1) if self._sends <= 16 else self.max_backoff_ms
        if wait > self.max_backoff_ms:
            wait = self.max_backoff_ms
        j = self.jitter_ms
        if j:
            r = os.urandom(2)
            wait += ((r[0] << 8 | r[1]) * (2 * j + 1)) >> 16  # uniform in [0, 2j]
            wait -= j
        self._retx_at = ticks_add(now, wait)

    def _retransmit(self, now):
        c = self.cnt
        if self._sends >= self.tries and self.state == REBOOTING:
            self._event("no answer to the INIT-REBOOT REQUEST: the lease goes on")
            self._set_state(BOUND)  # (its clock ran all along; T1 / T2 come as they were)
            return
        if self._sends >= self.tries:
            # RFC 2131 3.1.5 / 4.1: no answer after the whole series: back to INIT
            c[_DHCP_RESTART] += 1
            if self.stack.trace is not None:
                self._event("no answer to %s after %d tries: restart" % (
                    "DISCOVER" if self.state == SELECTING else "REQUEST", self._sends))
            self._init(now)
            return
        c[_DHCP_RETRANSMIT] += 1
        if self.state == SELECTING:
            self._send_discover(now)
        else:
            self._send_select_request(now, self.state == REQUESTING)

    # -- state changes ---------------------------------------------------------------------------
    def _set_state(self, st):
        if st != self.state:
            self.state = st
            if self.stack.trace is not None:
                self._event("state " + STATE_NAMES[st])

    def _event(self, text):
        t = self.stack.trace
        if t is not None:
            t("dhcp", None, text)

    def _new_xid(self):
        r = os.urandom(4)
        for i in range(4):
            self.xid[i] = r[i]

    def _init(self, now):
        self._set_state(INIT)
        self._new_xid()
        self._began = now
        self._sends = 0
        self._set_state(SELECTING)
        self._send_discover(now)

    def _send_discover(self, now):
        self._sends += 1
        n = self._build(DISCOVER, False, False, False)
        self._send(n, None)
        if self.stack.trace is not None:
            self._event("DISCOVER xid=%s try %d" % (_hex(self.xid), self._sends))
        self._backoff(now)

    def _send_select_request(self, now, with_server=True):
        """SELECTING's REQUEST (with the server identifier), or INIT-REBOOT's (without)."""
        self._sends += 1
        n = self._build(REQUEST, False, True, with_server)
        self._req_sent = now
        self._send(n, None)
        if self.stack.trace is not None:
            self._event("REQUEST %s %s try %d" % (
                ipv4.ntoa(self.offered), "from " + ipv4.ntoa(self.server) if with_server else "(rebooting)",
                self._sends))
        self._backoff(now)

    def _lease_request(self, now):
        """RENEWING: unicast to the server; REBINDING: broadcast (RFC 2131 4.4.5)."""
        renewing = self.state == RENEWING
        n = self._build(REQUEST, True, False, False)
        self._req_sent = now
        self._send(n, self.server if renewing else None)
        limit = self.t2_s if renewing else self.lease_s
        wait = (limit - self._elapsed_s) // 2
        if wait < self.renew_min_s:
            wait = self.renew_min_s
        self._next_s = self._elapsed_s + wait
        if self.stack.trace is not None:
            self._event("REQUEST %s %s" % (ipv4.ntoa(self.addr), "to " + ipv4.ntoa(self.server) if renewing
                                           else "(rebinding, broadcast)"))

    def _unconfigure(self):
        s = self.stack
        s.route.configure(ZERO, 32, None)
        s.dns_servers = []
        self.addr = None
        self.gateway = None
        self.dns = []

    # -- output ----------------------------------------------------------------------------------
    def _build(self, msg_type, with_ciaddr, with_requested, with_server):
        """The message in stack.tx at the UDP payload offset; returns its length."""
        s = self.stack
        f = s.tx
        o = PAYLOAD
        for i in range(o, o + OPTIONS):
            f[i] = 0
        f[o + OP] = 1  # BOOTREQUEST
        f[o + HTYPE] = 1  # Ethernet
        f[o + HLEN] = 6
        mem.copy(f, o + XID, self.xid, 0, 4)
        if msg_type == DISCOVER or msg_type == REQUEST and not with_ciaddr:
            secs = ticks_diff(s.clock.ticks_ms(), self._began) // 1000
            if secs > 0xFFFF:
                secs = 0xFFFF
            f[o + SECS] = secs >> 8
            f[o + SECS + 1] = secs & 0xFF
        if self.broadcast_flag and not with_ciaddr and msg_type != DECLINE:
            f[o + FLAGS] = _FLAG_BROADCAST
        if with_ciaddr:
            mem.copy(f, o + CIADDR, self.addr, 0, 4)
        mem.copy(f, o + CHADDR, s.mac, 0, 6)
        mem.copy(f, o + COOKIE, MAGIC, 0, 4)
        i = o + OPTIONS
        f[i] = OPT_MSG_TYPE
        f[i + 1] = 1
        f[i + 2] = msg_type
        i += 3
        i = _put_option(f, i, OPT_CLIENT_ID, self.client_id)
        if with_requested:
            i = _put_option(f, i, OPT_REQUESTED_IP, self.offered)
        if with_server:
            i = _put_option(f, i, OPT_SERVER_ID, self.server)
        if msg_type != RELEASE and msg_type != DECLINE:  # RFC 2131 table 5: MUST NOT
            if self.hostname is not None:
                i = _put_option(f, i, OPT_HOSTNAME, self.hostname)
            i = _put_option(f, i, OPT_PARAMS, PARAMS)
        f[i] = OPT_END
        i += 1
        n = i - o
        if n < _BOOTP_MIN:
            for j in range(i, o + _BOOTP_MIN):
                f[j] = 0
            n = _BOOTP_MIN
        return n

    def _send(self, n, dst):
        s = self.stack
        self.cnt[_DHCP_TX] += 1
        s.udp.sendto(s.tx, n, dst if dst is not None else b"\xff\xff\xff\xff", SERVER_PORT, CLIENT_PORT)

    # -- input -----------------------------------------------------------------------------------
    def _input(self, buf, off, n, sip, sipo, sport):
        """A datagram to port 68 (the UDP layer's handler): validate, then act by state."""
        c = self.cnt
        c[_DHCP_RX] += 1
        if n < OPTIONS + 4 or buf[off + OP] != 2 or buf[off + HTYPE] != 1 or buf[off + HLEN] != 6:
            c[_DHCP_DROP_MALFORMED] += 1
            return
        if not mem.equal(buf, off + COOKIE, MAGIC, 0, 4):
            c[_DHCP_DROP_MALFORMED] += 1
            return
        if not mem.equal(buf, off + XID, self.xid, 0, 4) or not mem.equal(buf, off + CHADDR, self.stack.mac, 0, 6):
            c[_DHCP_DROP_NOT_OURS] += 1  # another client's exchange, or an old one of ours
            return
        # RFC 2132: walk the options once, noting where the ones we use are (no allocation)
        end = off + n
        i = off + OPTIONS
        mtype = 0
        o_server = o_mask = o_router = o_dns = o_lease = o_t1 = o_t2 = -1
        n_dns = 0
        while i < end:
            code = buf[i]
            if code == OPT_PAD:
                i += 1
                continue
            if code == OPT_END:
                break
            if i + 1 >= end:
                c[_DHCP_DROP_MALFORMED] += 1
                return
            ln = buf[i + 1]
            v = i + 2
            if v + ln > end:
                c[_DHCP_DROP_MALFORMED] += 1
                return
            if code == OPT_MSG_TYPE and ln == 1:
                mtype = buf[v]
            elif code == OPT_SERVER_ID and ln == 4:
                o_server = v
            elif code == OPT_SUBNET_MASK and ln == 4:
                o_mask = v
            elif code == OPT_ROUTER and ln >= 4:
                o_router = v
            elif code == OPT_DNS and ln >= 4:
                o_dns = v
                n_dns = ln // 4
            elif code == OPT_LEASE_TIME and ln == 4:
                o_lease = v
            elif code == OPT_T1 and ln == 4:
                o_t1 = v
            elif code == OPT_T2 and ln == 4:
                o_t2 = v
            i = v + ln
        st = self.state
        if mtype == OFFER and st == SELECTING:
            if o_server < 0:
                c[_DHCP_DROP_MALFORMED] += 1
                return
            if not usable_address(buf, off + YIADDR, lease_prefix(buf, off + YIADDR, o_mask)):
                c[_DHCP_BAD_ADDRESS] += 1  # ignored: SELECTING goes on for a sane offer
                if self.stack.trace is not None:
                    self._event("OFFER of %s refused" % ipv4.ntoa(buf, off + YIADDR))
                return
            c[_DHCP_OFFER] += 1
            mem.copy(self.offered, 0, buf, off + YIADDR, 4)
            mem.copy(self.server, 0, buf, o_server, 4)
            if self.stack.trace is not None:
                self._event("OFFER %s from %s" % (ipv4.ntoa(self.offered), ipv4.ntoa(self.server)))
            # RFC 2131 4.4.1: the REQUEST carries the OFFER's xid, requested IP and server id
            self._set_state(REQUESTING)
            self._sends = 0
            self._send_select_request(self.stack.clock.ticks_ms())
        elif mtype == ACK and (st == REQUESTING or st == RENEWING or st == REBINDING or st == REBOOTING):
            if st == REQUESTING and o_server >= 0 and not mem.equal(buf, o_server, self.server, 0, 4):
                c[_DHCP_DROP_NOT_OURS] += 1  # an ACK from a server we did not select
                return
            if o_lease < 0:
                c[_DHCP_DROP_MALFORMED] += 1  # RFC 2131 table 3: an ACK carries the lease time
                return
            plen = lease_prefix(buf, off + YIADDR, o_mask)
            if not usable_address(buf, off + YIADDR, plen):
                c[_DHCP_BAD_ADDRESS] += 1
                if st == REQUESTING:
                    self._decline(buf, off + YIADDR)
                return  # RENEWING / REBINDING / REBOOTING: the lease we hold goes on
            c[_DHCP_ACK] += 1
            if o_server >= 0:
                mem.copy(self.server, 0, buf, o_server, 4)
            self._bind(buf, off, plen, o_router, o_dns, n_dns, o_lease, o_t1, o_t2)
        elif mtype == NAK and (st == REQUESTING or st == RENEWING or st == REBINDING or st == REBOOTING):
            c[_DHCP_NAK] += 1
            self._event("NAK in " + STATE_NAMES[st])
            if self.addr is not None:
                self._unconfigure()
            self._init(self.stack.clock.ticks_ms())
        else:
            c[_DHCP_DROP_STATE] += 1  # an OFFER after we chose, an ACK while BOUND, ...

    def _decline(self, buf, yoff):
        """An ACK in REQUESTING gave an address that cannot be ours: DHCPDECLINE it (broadcast:
        we have no address; RFC 2131 4.4.4, table 5), then INIT and a new DISCOVER after 10 s."""
        mem.copy(self.offered, 0, buf, yoff, 4)
        self.cnt[_DHCP_DECLINE] += 1
        self._send(self._build(DECLINE, False, True, True), None)
        if self.stack.trace is not None:
            self._event("DECLINE " + ipv4.ntoa(self.offered))
        self._set_state(INIT)
        self._retx_at = ticks_add(self.stack.clock.ticks_ms(), self.base_ms * 5 // 2)

    def _bind(self, buf, off, plen, o_router, o_dns, n_dns, o_lease, o_t1, o_t2):
        s = self.stack
        addr = bytes(buf[off + YIADDR:off + YIADDR + 4])
        gw = bytes(buf[o_router:o_router + 4]) if o_router >= 0 else None
        dns = []
        for k in range(n_dns if n_dns < _MAX_DNS else _MAX_DNS):
            d = bytes(buf[o_dns + 4 * k:o_dns + 4 * k + 4])
            if not ipv4.is_zero(d) and not ipv4.is_limited_broadcast(d):
                dns.append(d)
        lease = _u32_seconds(buf, o_lease)
        t1 = _u32_seconds(buf, o_t1) if o_t1 >= 0 else -2
        t2 = _u32_seconds(buf, o_t2) if o_t2 >= 0 else -2
        if lease != _INFINITE:
            # RFC 2131 4.4.5: T1 = 0.5 lease, T2 = 0.875 lease unless given (and sane)
            if not 0 <= t2 < lease:
                t2 = lease * 7 // 8
            if not 0 <= t1 < t2:
                t1 = lease // 2
                if t1 >= t2:
                    t1 = t2
        changed = self.addr is None or self.addr != addr or self.prefix_len != plen or self.gateway != gw
        if changed:
            try:
                s.route.configure(addr, plen, gw)
            except ValueError:
                self.cnt[_DHCP_GATEWAY_IGNORED] += 1  # a router off the subnet: no default route
                self._event("router %s is not on %s/%d: ignored" % (ipv4.ntoa(gw), ipv4.ntoa(addr), plen))
                gw = None
                s.route.configure(addr, plen, None)
        s.dns_servers = dns
        self.addr = addr
        self.prefix_len = plen
        self.gateway = gw
        self.dns = dns
        self.lease_s = lease
        self.t1_s = t1
        self.t2_s = t2
        self._mark = self._req_sent  # RFC 2131 4.4.1: the lease began when the REQUEST left
        self._elapsed_s = 0
        self._lease_clock(s.clock.ticks_ms())
        self._set_state(BOUND)
        if s.trace is not None:
            self._event("ACK %s/%d gw %s dns %s lease %s t1 %d t2 %d" % (
                ipv4.ntoa(addr), plen, ipv4.ntoa(gw) if gw is not None else "-",
                ",".join(ipv4.ntoa(d) for d in dns) or "-",
                "infinite" if lease == _INFINITE else "%ds" % lease, t1, t2))


def _put_option(f, i, code, value):
    n = len(value)
    f[i] = code
    f[i + 1] = n
    mem.copy(f, i + 2, value, 0, n)
    return i + 2 + n


def _hex(b):
    return "%02x%02x%02x%02x" % (b[0], b[1], b[2], b[3])
