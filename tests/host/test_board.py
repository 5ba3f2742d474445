# dual: cpython micropython
"""lib/tcpip/board.py: bring_up() builds SPI and pins from the board constants, opens the chip
driver, waits for the link and gets an address (static, or DHCP from a scripted LAN), and fails with
a clear BoardError for an unknown chip, a chip that does not answer, no link and no DHCP lease.

A fake `machine` module records what bring_up asks for; FakeNic stands in for the drivers; Lan is a
scripted network (ARP, a DHCP server, a DNS server) behind the NIC, all on a ManualClock that the
NIC's wait() moves. The last tests run the real drivers against the chip models through
host_tools/mp/machine_shim.py, the way the virtual board and a real board do it.
"""
import sys

from tcpip import board as tboard
from tcpip import socket as tsocket
from tcpip.checksum import checksum, pseudo_sum
from manualclock import ManualClock
from tcpip.tcp import TcpConfig
from wirerep import ipv4


def _root():
    parts = __file__.split("/")
    return "/".join(parts[:-3]) or "."


ROOT = _root()
for _p in (ROOT, ROOT + "/host_tools/mp"):
    if _p not in sys.path:
        sys.path.append(_p)  # boards/ (a namespace package) and the machine shim / chip models

from machine_shim import PinCalls  # noqa: E402  (the pin calls every machine.Pin has)

SERVER_MAC = b"\x02\x00\x00\x00\x00\x01"
SERVER_IP = ipv4.aton("192.0.2.1")
DNS_IP = ipv4.aton("192.0.2.53")
LEASE_IP = ipv4.aton("192.0.2.50")
STACK_MAC = b"\x02\x11\x22\x33\x44\x55"


class Board:
    BOARD = "Test-Board"
    CHIP = "w5500"
    SPI_ID = 1
    SCK = 10
    MOSI = 11
    MISO = 12
    CS = 13
    RST = 14
    INT = 15
    BAUDRATE = 12000000


def board_with(**kw):
    class B(Board):
        pass
    for k in kw:
        setattr(B, k, kw[k])
    return B


# -- a fake `machine` ------------------------------------------------------------------------------
class FakeMachine:
    """Records every SPI and Pin made: spis [(id, kwargs)], pins [Pin]."""

    def __init__(self):
        rec = self
        self.spis = []
        self.pins = []

        class Pin(PinCalls):
            IN = 0
            OUT = 1
            PULL_UP = 1
            PULL_DOWN = 2

            def __init__(self, id, mode=-1, pull=-1, value=None):
                self.id = id
                self.mode = mode
                self.pull = pull
                self.level = value
                rec.pins.append(self)

            def value(self, v=None):
                if v is None:
                    return self.level
                self.level = v

        class SPI:
            def __init__(self, id, **kw):
                self.id = id
                self.kw = kw
                rec.spis.append((id, kw))

        self.Pin = Pin
        self.SPI = SPI

    def pin(self, pid):
        found = [p for p in self.pins if p.id == pid and p.mode != -1]
        assert len(found) == 1, (pid, [(p.id, p.mode) for p in self.pins])
        return found[0]


# -- a scripted LAN: ARP, DHCP server, DNS server -------------------------------------------------
def _u16(b, o):
    return b[o] << 8 | b[o + 1]


def _frame_ip_udp(dst_mac, src_ip, dst_ip, sport, dport, payload):
    n = 42 + len(payload)
    f = bytearray(n)
    f[0:6] = dst_mac
    f[6:12] = SERVER_MAC
    f[12] = 0x08
    f[14] = 0x45
    total = n - 14
    f[16] = total >> 8
    f[17] = total & 0xFF
    f[22] = 64
    f[23] = 17
    f[26:30] = src_ip
    f[30:34] = dst_ip
    cs = checksum(f, 14, 34)
    f[24] = cs >> 8
    f[25] = cs & 0xFF
    f[34] = sport >> 8
    f[35] = sport & 0xFF
    f[36] = dport >> 8
    f[37] = dport & 0xFF
    f[38] = (n - 34) >> 8
    f[39] = (n - 34) & 0xFF  # UDP checksum 0: none (RFC 768)
    f[42:] = payload
    return f


def _dhcp_options(buf, off, end):
    """{code: bytes} of the options after the magic cookie."""
    out = {}
    i = off
    while i < end:
        code = buf[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        n = buf[i + 1]
        out[code] = bytes(buf[i + 2:i + 2 + n])
        i += 2 + n
    return out


class Lan:
    """The network behind a NIC. send(buf, n): a frame the stack sent; recv_into(buf): the next
    frame for the stack (0 when none). Answers ARP for the server, the DNS server and the hosts of
    `names`, DHCP (when dhcp=True), DNS A queries for names in `names`; a TCP SYN gets a RST."""

    def __init__(self, dhcp=True, names=None, dns_ip=DNS_IP):
        self.dhcp = dhcp
        self.names = names or {}
        self.dns_ip = dns_ip
        self.queue = []
        self.sent = []           # (kind, detail) of what the stack sent
        self.dhcp_types = []     # DHCP message types seen (1 DISCOVER, 3 REQUEST)
        self.dhcp_hostname = None
        self.dns_queries = []

    def recv_into(self, buf):
        if not self.queue:
            return 0
        f = self.queue.pop(0)
        n = len(f)
        buf[0:n] = f
        return n

    def send(self, buf, n):
        f = bytes(buf[0:n])
        et = _u16(f, 12)
        if et == 0x0806:
            self.sent.append(("arp", ipv4.ntoa(f, 38)))
            self._arp(f)
        elif et == 0x0800 and f[23] == 6:
            self._tcp(f)
        elif et == 0x0800 and f[23] == 17:
            dport = _u16(f, 36)
            if dport == 67:
                self._dhcp(f)
            elif dport == 53:
                self._dns(f)
            else:
                self.sent.append(("udp", dport))
        else:
            self.sent.append(("other", et))

    def _tcp(self, f):
        t = 34
        flags = f[t + 13]
        self.sent.append(("tcp", flags))
        if not flags & 0x02 or flags & 0x04:
            return
        seq = int.from_bytes(f[t + 4:t + 8], "big")
        r = bytearray(54)
        r[0:6] = f[6:12]
        r[6:12] = SERVER_MAC
        r[12] = 0x08
        r[14] = 0x45
        r[17] = 40
        r[22] = 64
        r[23] = 6
        r[26:30] = f[30:34]
        r[30:34] = f[26:30]
        cs = checksum(r, 14, 34)
        r[24] = cs >> 8
        r[25] = cs & 0xFF
        r[34:36] = f[t + 2:t + 4]
        r[36:38] = f[t:t + 2]
        r[42:46] = ((seq + 1) & 0xFFFFFFFF).to_bytes(4, "big")
        r[46] = 0x50
        r[47] = 0x14  # RST|ACK (RFC 9293 3.10.7.1: a SYN to a closed port)
        cs = checksum(r, 34, 54, pseudo_sum(r, 26, r, 30, 6, 20))
        r[50] = cs >> 8
        r[51] = cs & 0xFF
        self.queue.append(r)

    def _arp(self, f):
        if _u16(f, 20) != 1:
            return
        tpa = f[38:42]
        hosts = [ipv4.aton(a) for a in self.names.values()]
        if tpa != SERVER_IP and tpa != self.dns_ip and tpa not in hosts:
            return
        r = bytearray(42)
        r[0:6] = f[6:12]
        r[6:12] = SERVER_MAC
        r[12] = 0x08
        r[13] = 0x06
        r[14:22] = b"\x00\x01\x08\x00\x06\x04\x00\x02"
        r[22:28] = SERVER_MAC
        r[28:32] = tpa
        r[32:38] = f[22:28]
        r[38:42] = f[28:32]
        self.queue.append(r)

    def _dhcp(self, f):
        p = 42
        opts = _dhcp_options(f, p + 240, len(f))
        kind = opts.get(53, b"\x00")[0]
        self.dhcp_types.append(kind)
        if 12 in opts:
            self.dhcp_hostname = opts[12]
        if not self.dhcp:
            return
        reply = 2 if kind == 1 else 5 if kind == 3 else 0
        if not reply:
            return
        b = bytearray(240)
        b[0] = 2
        b[1] = 1
        b[2] = 6
        b[4:8] = f[p + 4:p + 8]           # xid
        b[16:20] = LEASE_IP                # yiaddr
        b[28:44] = f[p + 28:p + 44]        # chaddr
        b[236:240] = b"\x63\x82\x53\x63"
        b += bytes([53, 1, reply, 54, 4]) + SERVER_IP
        b += bytes([51, 4, 0, 0, 0x0E, 0x10, 1, 4, 255, 255, 255, 0, 3, 4]) + SERVER_IP
        b += bytes([6, 4]) + self.dns_ip + bytes([255])
        self.queue.append(_frame_ip_udp(f[6:12], SERVER_IP, LEASE_IP, 67, 68, b))

    def _dns(self, f):
        q = f[42:]
        i = 12
        labels = []
        while q[i]:
            labels.append(bytes(q[i + 1:i + 1 + q[i]]).decode())
            i += 1 + q[i]
        name = ".".join(labels)
        self.dns_queries.append(name)
        end = i + 5
        addr = self.names.get(name)
        r = bytearray(q[0:end])
        r[2] = 0x81
        r[3] = 0x80 if addr is not None else 0x83  # NXDOMAIN when unknown
        r[6] = 0
        r[7] = 1 if addr is not None else 0
        r[8:12] = b"\x00\x00\x00\x00"
        if addr is not None:
            r += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + ipv4.aton(addr)
        self.queue.append(_frame_ip_udp(f[6:12], f[30:34], f[26:30], 53, _u16(f, 34), r))


def nic_class(lan, clock, link_after=0, fail=None):
    """A driver class over lan: link_up() is true from its (link_after+1)-th call; fail: an
    OSError text raised by the constructor (the chip does not answer)."""

    class FakeNic:
        made = []

        def __init__(self, spi, cs, reset=None, mac=None, int_pin=None, clock=None, **kw):
            if fail is not None:
                raise OSError(fail)
            self.args = (spi, cs, reset, mac, int_pin, clock)
            self.kw = kw
            self.mac = mac if mac is not None else STACK_MAC
            self.mtu = 1500
            self.link_calls = 0
            self.counters = {"rx_frames": 0, "tx_frames": 0}
            FakeNic.made.append(self)

        def link_up(self):
            self.link_calls += 1
            return self.link_calls > link_after

        def recv_into(self, buf):
            n = lan.recv_into(buf)
            if n:
                self.counters["rx_frames"] += 1
            return n

        def send(self, buf, n):
            self.counters["tx_frames"] += 1
            lan.send(buf, n)

        def wait(self, ms):
            if not lan.queue:
                clock.advance(ms if ms > 0 else 1)

    return FakeNic


def up(board=Board, lan=None, clock=None, link_after=0, fail=None, **kw):
    clock = clock if clock is not None else ManualClock(1000)
    lan = lan if lan is not None else Lan()
    m = FakeMachine()
    nic = nic_class(lan, clock, link_after, fail)
    kw.setdefault("link_timeout_ms", 1000)
    stack = tboard.bring_up(board, clock=clock, machine=m, driver=nic, **kw)
    return stack, m, nic, lan, clock


def raises(fn, reason):
    try:
        fn()
    except tboard.BoardError as exc:
        assert exc.reason == reason, (exc.reason, str(exc))
        assert isinstance(exc, OSError)
        return str(exc)
    raise AssertionError("no BoardError(%s)" % reason)


# -- SPI, pins, driver arguments ---------------------------------------------------------------
def test_spi_and_pins_come_from_the_board_constants():
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24", gateway="192.0.2.1")
    assert len(m.spis) == 1
    sid, kw = m.spis[0]
    assert sid == 1
    assert sorted(kw) == ["baudrate", "miso", "mosi", "sck"]
    assert kw["baudrate"] == 12000000
    assert (kw["sck"].id, kw["mosi"].id, kw["miso"].id) == (10, 11, 12)
    cs = m.pin(13)
    assert cs.mode == m.Pin.OUT and cs.level == 1       # CS idles high
    rst = m.pin(14)
    assert rst.mode == m.Pin.OUT and rst.level == 1     # reset released
    irq = m.pin(15)
    assert irq.mode == m.Pin.IN and irq.pull == m.Pin.PULL_UP
    d = nic.made[0]
    spi, a_cs, a_rst, mac, a_int, a_clock = d.args
    assert spi.id == 1 and a_cs is cs and a_rst is rst and a_int is irq
    assert mac is None and a_clock is clock
    assert stack.device is d and stack.nic is d and stack.board is Board


def test_board_without_reset_and_int_pins():
    b = board_with(RST=None, INT=None)
    stack, m, nic, lan, clock = up(b, addr="192.0.2.2/24")
    spi, cs, rst, mac, irq, _ = nic.made[0].args
    assert rst is None and irq is None
    assert [p.id for p in m.pins if p.mode != -1] == [13]


def test_mac_is_passed_to_the_driver():
    mac = b"\x02\xaa\xbb\xcc\xdd\xee"
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24", mac=mac)
    assert nic.made[0].args[3] == mac
    assert stack.mac == mac


def test_the_repository_board_files():
    for name, chip in (("w5500_evb_pico", "w5500"), ("pico_enc28j60", "enc28j60")):
        b = tboard.load_board(name)
        assert b.CHIP == chip
        stack, m, nic, lan, clock = up(b, addr="192.0.2.2/24")
        sid, kw = m.spis[0]
        assert sid == b.SPI_ID == 0
        assert (kw["sck"].id, kw["mosi"].id, kw["miso"].id) == (18, 19, 16)
        assert kw["baudrate"] == b.BAUDRATE
        assert m.pin(17).level == 1 and m.pin(20).level == 1 and m.pin(21).mode == m.Pin.IN


def test_enc28j60_runs_half_duplex_unless_the_board_says_full():
    stack, m, nic, lan, clock = up(board_with(CHIP="enc28j60"), addr="192.0.2.2/24")
    assert nic.made[0].kw == {"full_duplex": False}
    stack, m, nic, lan, clock = up(board_with(CHIP="enc28j60", FULL_DUPLEX=True), addr="192.0.2.2/24")
    assert nic.made[0].kw == {"full_duplex": True}
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24")  # the W5500 negotiates: nothing extra
    assert nic.made[0].kw == {}


def test_default_receive_ring_fits_the_chips_buffer():
    # a driver's RX_WINDOW caps the default receive ring (an ENC28J60 holds 4 frames, a W5500 10):
    # a bigger window than the chip can buffer loses frames whenever the board falls behind
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24")
    assert stack.tcp.config.rx_buffer == TcpConfig().rx_buffer == 12288  # no RX_WINDOW: default
    drv = nic_class(Lan(), clock)
    drv.RX_WINDOW = 4096
    stack = tboard.bring_up(Board, clock=clock, machine=FakeMachine(), driver=drv,
                            link_timeout_ms=1000, addr="192.0.2.2/24")
    assert stack.tcp.config.rx_buffer == 4096 and stack.tcp.config.tx_buffer == 12288
    cfg = TcpConfig(rx_buffer=8000)
    stack, m, nic3, lan, clock = up(addr="192.0.2.2/24", tcp_config=cfg)
    assert stack.tcp.config is cfg and cfg.rx_buffer == 8000  # a given configuration is kept
    from tcpip.drivers.enc28j60 import Enc28j60
    from tcpip.drivers.w5500 import W5500
    assert Enc28j60.RX_WINDOW == 4096 and W5500.RX_WINDOW == 12288


def test_board_by_name():
    stack, m, nic, lan, clock = up("w5500_evb_pico", addr="192.0.2.2/24")
    assert stack.board.BOARD == "W5500-EVB-Pico"


# -- static address ------------------------------------------------------------------------------
def test_static_address_gateway_and_dns():
    lines = []
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24", gateway="192.0.2.1", dns="192.0.2.53",
                                   log=lines.append)
    r = stack.route
    assert (ipv4.ntoa(r.addr), r.prefix_len, ipv4.ntoa(r.gateway)) == ("192.0.2.2", 24, "192.0.2.1")
    assert stack.dhcp is None
    assert stack.dns_servers == [DNS_IP]
    assert lan.dhcp_types == []  # no DHCP traffic
    assert tsocket.socket().stack is stack  # the default stack
    assert lines[0] == "Test-Board: w5500 ready, mac 02:11:22:33:44:55"
    assert lines[1] == "Test-Board: link up"
    assert lines[-1] == "Test-Board: 192.0.2.2/24 gw 192.0.2.1 dns 192.0.2.53 (static)"


def test_static_dns_list_of_servers():
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24", dns=["192.0.2.53", "192.0.2.54"])
    assert stack.dns_servers == [DNS_IP, ipv4.aton("192.0.2.54")]


def test_static_without_dns_has_no_servers():
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24")
    assert stack.dns_servers == []
    assert tboard.status_line(stack) == "Test-Board: 192.0.2.2/24 (static)"


def test_bad_static_address_opens_nothing():
    m = FakeMachine()
    text = raises(lambda: tboard.bring_up(Board, addr="192.0.2.300/24", machine=m,
                                          driver=nic_class(Lan(), ManualClock())), "bad-address")
    assert "192.0.2.300/24" in text
    assert m.spis == [] and m.pins == []
    raises(lambda: tboard.bring_up(Board, addr="192.0.2.2/24", gateway="198.51.100.1", machine=m,
                                   driver=nic_class(Lan(), ManualClock())), "bad-address")


def test_no_address_without_dhcp():
    text = raises(lambda: up(dhcp=False), "no-address")
    assert "addr=" in text


# -- errors ----------------------------------------------------------------------------------------
def test_unknown_chip():
    b = board_with(CHIP="rtl8019")
    text = raises(lambda: tboard.bring_up(b, addr="192.0.2.2/24", machine=FakeMachine()), "unknown-chip")
    assert "rtl8019" in text and "enc28j60" in text and "w5500" in text


def test_chip_that_does_not_answer():
    text = raises(lambda: up(addr="192.0.2.2/24", fail="W5500 not found (VERSIONR 0xff, want 4)"),
                  "no-chip")
    assert "W5500 not found (VERSIONR 0xff, want 4)" in text
    assert "Test-Board" in text
    assert "SPI1 SCK GP10 MOSI GP11 MISO GP12 CS GP13 RST GP14 at 12 MHz" in text


def test_no_link_waits_a_bounded_time():
    clock = ManualClock(1000)
    text = raises(lambda: up(addr="192.0.2.2/24", clock=clock, link_after=10 ** 9,
                             link_timeout_ms=2000), "no-link")
    assert "no Ethernet link after 2000 ms" in text and "cable" in text
    waited = clock.ticks_ms() - 1000
    assert 2000 <= waited <= 2100, waited


def test_link_that_comes_up_late():
    clock = ManualClock(1000)
    stack, m, nic, lan, _ = up(addr="192.0.2.2/24", clock=clock, link_after=3)
    assert nic.made[0].link_calls == 4
    assert clock.ticks_ms() - 1000 == 150  # three 50 ms polls


def test_no_link_check_when_asked():
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24", link_after=10 ** 9, link_timeout_ms=None)
    assert nic.made[0].link_calls == 0


def test_load_board_errors():
    text = raises(lambda: tboard.load_board("no_such_board"), "bad-board")
    assert "boards/no_such_board.py" in text
    assert "w5500_evb_pico" in text and "pico_enc28j60" in text  # the known boards are listed
    for bad in ("", "../x", "a.b", "9x", None):
        raises(lambda: tboard.load_board(bad), "bad-board")
    assert "w5500_evb_pico" in tboard.known_boards()


def test_board_file_missing_a_constant():
    b = board_with(MOSI=None)
    text = raises(lambda: tboard.bring_up(b, addr="192.0.2.2/24", machine=FakeMachine()), "bad-board")
    assert "MOSI" in text


# -- DHCP ------------------------------------------------------------------------------------------
def test_dhcp_lease_gives_address_gateway_and_dns():
    lines = []
    stack, m, nic, lan, clock = up(hostname="pico1", log=lines.append)
    r = stack.route
    assert (ipv4.ntoa(r.addr), r.prefix_len, ipv4.ntoa(r.gateway)) == ("192.0.2.50", 24, "192.0.2.1")
    assert stack.dns_servers == [DNS_IP]
    assert stack.dhcp is not None and stack.dhcp.bound()
    assert lan.dhcp_types == [1, 3]          # DISCOVER, REQUEST
    assert lan.dhcp_hostname == b"pico1"
    assert lines[-1] == "Test-Board: 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53 (DHCP)"
    assert stack.trace is None               # the DHCP log hook is gone after bring-up


def test_dhcp_dns_override():
    stack, m, nic, lan, clock = up(dns="192.0.2.99")
    assert stack.dns_servers == [ipv4.aton("192.0.2.99")]


def test_dhcp_timeout():
    clock = ManualClock(1000)
    text = raises(lambda: up(lan=Lan(dhcp=False), clock=clock, timeout_ms=6000), "dhcp-timeout")
    assert "no DHCP lease within 6000 ms" in text and "static" in text
    waited = clock.ticks_ms() - 1000
    assert 6000 <= waited <= 7100, waited


def test_static_address_wins_over_dhcp():
    stack, m, nic, lan, clock = up(addr="192.0.2.7/24", dhcp=True)
    assert ipv4.ntoa(stack.route.addr) == "192.0.2.7" and lan.dhcp_types == []


# -- DNS through the resolver bring_up plugs into tcpip.socket --------------------------------------
def test_getaddrinfo_uses_the_dhcp_dns_server():
    lan = Lan(names={"printer.lan": "192.0.2.80"})
    stack, m, nic, lan, clock = up(lan=lan)
    ai = tsocket.getaddrinfo("printer.lan", 631)
    assert ai[0][-1] == ("192.0.2.80", 631)
    assert lan.dns_queries == ["printer.lan"]
    try:
        tsocket.getaddrinfo("nothing.lan", 80)
        raise AssertionError("resolved an unknown name")
    except OSError as exc:
        assert exc.args[0] == -2  # EAI_NONAME, as MicroPython
    assert "nothing.lan" in lan.dns_queries


def test_a_syn_to_the_lan_is_refused():
    stack, m, nic, lan, clock = up(addr="192.0.2.2/24")
    s = tsocket.socket()
    s.settimeout(5)
    try:
        s.connect(("192.0.2.1", 80))
        raise AssertionError("connected")
    except OSError as exc:
        assert exc.args[0] == 111  # ECONNREFUSED
    s.close()


def test_a_machine_module_without_spi():
    class UnixMachine:  # the unix port's own `machine`: no SPI, no Pin
        pass
    text = raises(lambda: tboard.bring_up(Board, addr="192.0.2.2/24", machine=UnixMachine(),
                                          driver=nic_class(Lan(), ManualClock())), "no-machine")
    assert "machine_shim" in text


def test_bring_up_code_is_dropped_once_the_board_is_up():
    # tcpip.board_init (the hardware, link, DHCP and DNS steps) is loaded for bring_up and then
    # dropped, on success and on failure, so its code is not kept in a board's heap
    import sys

    import tcpip

    stack, m, nic, lan, clock = up(addr="192.0.2.2/24")
    assert "tcpip.board_init" not in sys.modules and not hasattr(tcpip, "board_init")
    raises(lambda: up(addr="192.0.2.2/24", link_after=10 ** 6), "no-link")
    assert "tcpip.board_init" not in sys.modules and not hasattr(tcpip, "board_init")
    # its functions stay reachable through tcpip.board (loaded for the call, not kept)
    assert tboard.status_line(stack) == "Test-Board: 192.0.2.2/24 (static)"
    assert "tcpip.board_init" not in sys.modules
    stack2, m, nic, lan, clock = up(addr="192.0.2.3/24")  # a second bring-up loads it anew
    assert stack2.route.addr == ipv4.aton("192.0.2.3")
