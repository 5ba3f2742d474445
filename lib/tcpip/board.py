"""Bring a board up: SPI and pins from its board file, the chip driver, the Stack, an address (DHCP
or static) and DNS.

    from tcpip.board import bring_up, load_board
    stack = bring_up(load_board("w5500_evb_pico"))          # DHCP, DNS from the DHCP server
    stack = bring_up("pico_enc28j60", addr="192.168.1.50/24", gateway="192.168.1.1",
                     dns="192.168.1.1")                      # static

A board file (boards/<name>.py) holds constants only: BOARD (a display name), CHIP ("w5500" or
"enc28j60"), SPI_ID, SCK, MOSI, MISO, CS, RST, INT (GPIO numbers; RST and INT may be None),
BAUDRATE, and for an ENC28J60 optionally FULL_DUPLEX (default False: the chip cannot auto-negotiate,
so only a switch port forced to 10 Mbit/s full duplex wants True). load_board(name) imports it as `boards.<name>`: on a board the files live in /lib/boards/
(the bundle and mip put them there; /boards/ works too, '' is on sys.path) or are frozen into the
firmware (firmware/manifest.py). Adding a board is adding a file.

Every failure is a BoardError (an OSError) whose text says what to check and whose `reason` is one
of "bad-board", "unknown-chip", "no-machine", "no-chip", "no-link", "dhcp-timeout", "no-address", "bad-address".
Drivers and DHCP/DNS are imported only when used, so a bundle may carry one driver.
"""
from tcpip.clock import Clock, ticks_diff
from tcpip.route import Route
from tcpip.stack import Stack

# CHIP -> (module, class); each driver takes (spi, cs, reset=, mac=, int_pin=, clock=)
CHIPS = {
    "w5500": ("tcpip.drivers.w5500", "W5500"),
    "enc28j60": ("tcpip.drivers.enc28j60", "Enc28j60"),
}
REQUIRED = ("CHIP", "SPI_ID", "SCK", "MOSI", "MISO", "CS", "BAUDRATE")
LINK_TIMEOUT_MS = 5000    # auto-negotiation takes 1.5-3 s after a PHY reset (W5500, ENC28J60 10BASE-T)
DHCP_TIMEOUT_MS = 15000   # DISCOVER is retried with backoff (RFC 2131 4.1); a LAN answers in < 1 s
_LINK_POLL_MS = 50


class BoardError(OSError):
    """Bring-up failed; str() says what and what to check, .reason names the step."""
    reason = None


def _fail(reason, *args):
    """The BoardError for a failed step; its text (tcpip.board_help, loaded only on failure)
    says what to check."""
    from tcpip import board_help

    return board_help.error(reason, args)


def _valid_name(name):
    if not isinstance(name, str) or not name:
        return False
    for c in name:
        if not (c.isalpha() or c.isdigit() or c == "_"):
            return False
    return not name[0].isdigit()


def known_boards():
    """Names of the board files found in <each sys.path entry>/boards (sorted, no duplicates)."""
    from tcpip import board_help

    return board_help.known_boards()


def load_board(name):
    """The board module boards/<name>.py (name without .py, e.g. "w5500_evb_pico")."""
    if not _valid_name(name):
        raise _fail("bad-name", name)
    try:
        mod = __import__("boards." + name, None, None, ("CHIP",))
    except ImportError as exc:
        raise _fail("no-board-file", name, exc)
    check_board(mod, name)
    return mod


def check_board(board, name=None):
    """BoardError unless board has every constant bring_up needs."""
    name = name or getattr(board, "BOARD", None) or getattr(board, "__name__", "?")
    missing = [k for k in REQUIRED if getattr(board, k, None) is None]
    if missing:
        raise _fail("board-lacks", name, missing)


def driver_class(chip):
    """The driver class for a CHIP value (imported now)."""
    entry = CHIPS.get(chip)
    if entry is None:
        raise _fail("unknown-chip", chip)
    try:
        mod = __import__(entry[0], None, None, (entry[1],))
    except ImportError as exc:
        raise _fail("no-driver", chip, entry[0], exc)
    return getattr(mod, entry[1])


def mac_text(mac):
    return ":".join("%02x" % b for b in mac)


def _servers(dns):
    """dns (None, a server, or a list of them; texts or 4-byte addresses) -> 4-byte addresses."""
    from tcpip.wire import ipv4

    if dns is None:
        return []
    if isinstance(dns, (str, bytes, bytearray)):
        dns = [dns]
    out = []
    for d in dns:
        out.append(ipv4.aton(d) if isinstance(d, str) else bytes(d))
    return out


def open_nic(board, mac=None, clock=None, machine=None, driver=None):
    """SPI, CS/RST/INT pins and the chip driver from the board's constants -> the driver."""
    check_board(board)
    name = getattr(board, "BOARD", "board")
    chip = board.CHIP
    if driver is None:
        driver = driver_class(chip)
    if machine is None:
        try:
            import machine
        except ImportError:
            raise _fail("no-machine")
    Pin = getattr(machine, "Pin", None)
    if Pin is None or getattr(machine, "SPI", None) is None:
        raise _fail("no-spi")
    spi = machine.SPI(board.SPI_ID, baudrate=board.BAUDRATE, sck=Pin(board.SCK), mosi=Pin(board.MOSI),
                      miso=Pin(board.MISO))
    cs = Pin(board.CS, Pin.OUT, value=1)
    rst = getattr(board, "RST", None)
    reset = Pin(rst, Pin.OUT, value=1) if rst is not None else None
    irq = getattr(board, "INT", None)
    int_pin = None
    if irq is not None:
        pull = getattr(Pin, "PULL_UP", None)
        int_pin = Pin(irq, Pin.IN, pull) if pull is not None else Pin(irq, Pin.IN)
    kw = {}
    if chip == "w5500" and getattr(board, "DMA", True):
        # on an RP2040 the driver reads the next frame by DMA while the stack works on the last
        # (drivers/rp2dma.py); a board file says DMA = False to keep every transfer on machine.SPI
        dma = _spi_dma(board.SPI_ID)
        if dma is not None:
            kw["dma"] = dma
    if chip == "enc28j60":
        # No auto-negotiation on the ENC28J60: an auto-negotiating switch port falls back to half
        # duplex (802.3 parallel detection), so half duplex unless the board file says otherwise.
        kw["full_duplex"] = bool(getattr(board, "FULL_DUPLEX", False))
    try:
        return driver(spi, cs, reset=reset, mac=mac, int_pin=int_pin, clock=clock, **kw)
    except OSError as exc:
        raise _fail("no-chip", chip, name, board, exc)


def _spi_dma(spi_id):
    """A DMA engine for SPI spi_id on an RP2040 with rp2.DMA (MicroPython >= 1.21), else None."""
    import sys

    if sys.platform != "rp2":
        return None
    try:
        from tcpip.drivers.rp2dma import SpiDma

        return SpiDma(spi_id)
    except Exception:  # no rp2.DMA, no free DMA channel, no viper: machine.SPI alone
        return None


def wait_link(nic, clock, timeout_ms):
    """True once nic.link_up() (polled every 50 ms), False after timeout_ms. Drivers without
    link_up() count as linked."""
    link_up = getattr(nic, "link_up", None)
    if link_up is None:
        return True
    t0 = clock.ticks_ms()
    for _ in range(timeout_ms // _LINK_POLL_MS + 2):
        if link_up():
            return True
        if ticks_diff(clock.ticks_ms(), t0) >= timeout_ms:
            break
        clock.sleep_ms(_LINK_POLL_MS)
    return False


def bring_up(board, dhcp=True, addr=None, gateway=None, dns=None, mac=None, clock=None,
             timeout_ms=DHCP_TIMEOUT_MS, link_timeout_ms=LINK_TIMEOUT_MS, hostname=None,
             tcp_config=None, machine=None, driver=None, log=None):
    """Board -> a running Stack, also made tcpip.socket's default stack (and its resolver's).

    board: a board module (or its name, for load_board). addr "a.b.c.d/n" (+ gateway) gives a static
    address; else dhcp=True runs the DHCP client for up to timeout_ms. dns: a server or a list of
    them (static mode, or to override the DHCP server's). link_timeout_ms: wait for the Ethernet link
    first (None: do not wait). mac: 6 bytes (None: the driver derives one from machine.unique_id()).
    machine/driver: stand-ins for tests (the machine module, a driver class). log: callable(text)
    for progress lines. The stack gets attributes board, nic, dhcp (client or None), resolver
    (None without DNS servers or without tcpip.dns: tcpip.dns is imported only when there are
    servers); stack.dns_servers holds the DNS servers (4-byte addresses)."""
    from tcpip import socket as tsocket

    if isinstance(board, str):
        board = load_board(board)
    say = log if log is not None else (lambda text: None)
    clock = clock if clock is not None else Clock()
    name = getattr(board, "BOARD", "board")
    if addr is None and not dhcp:
        raise _fail("no-address", name)
    if addr is not None:
        try:
            Route().configure(addr, 24, gateway)
        except ValueError as exc:
            raise _fail("bad-address", addr, gateway, exc)
    nic = open_nic(board, mac, clock, machine, driver)
    say("%s: %s ready, mac %s" % (name, board.CHIP, mac_text(nic.mac)))
    if link_timeout_ms is not None:
        if not wait_link(nic, clock, link_timeout_ms):
            raise _fail("no-link", name, link_timeout_ms)
        say("%s: link up" % name)
    if tcp_config is None:
        # the default rings, the receive ring no bigger than the window the chip can buffer
        from tcpip.tcp import TcpConfig

        tcp_config = TcpConfig()
        w = getattr(nic, "RX_WINDOW", 0)
        if w and w < tcp_config.rx_buffer:
            tcp_config.rx_buffer = w
    stack = Stack(nic, clock=clock, addr=addr, gateway=gateway, tcp_config=tcp_config)
    stack.board = board
    stack.nic = nic
    stack.dhcp = None
    stack.resolver = None
    servers = _servers(dns)
    if addr is None:
        from tcpip.dhcp import DhcpClient

        client = DhcpClient(stack, hostname=hostname)
        stack.dhcp = client
        if log is not None:
            stack.trace = _dhcp_log(say)
        try:
            ok = client.run(timeout_ms)
        finally:
            stack.trace = None
        if not ok or not stack.route.configured():
            client.stop()
            raise _fail("dhcp-timeout", name, timeout_ms)
    if servers:
        stack.dns_servers = servers  # static, or overriding the DHCP server's (until a renewal)
    tsocket.set_default_stack(stack)
    tsocket.set_resolver(None)
    Resolver = None
    if stack.dns_servers:  # static servers, or the DHCP server's: names resolve (tcpip.dns)
        try:
            from tcpip.dns import Resolver
        except ImportError:
            pass  # a bundle without DNS: numeric addresses only
    if Resolver is not None:
        resolver = Resolver(stack)  # reads stack.dns_servers (DHCP keeps them current)
        stack.resolver = resolver
        resolver.install()  # tcpip.socket.getaddrinfo resolves names through it
    say(status_line(stack))
    return stack


def _dhcp_log(say):
    def trace(event, tcb, detail):
        if event == "dhcp" and not str(detail).startswith("state "):
            say("DHCP: %s" % (detail,))
    return trace


def status_line(stack):
    """'W5500-EVB-Pico: 192.168.1.23/24 gw 192.168.1.1 dns 192.168.1.1 (DHCP)'."""
    from tcpip.wire import ipv4

    r = stack.route
    board = getattr(stack, "board", None)
    dns = getattr(stack, "dns_servers", None) or []
    return "%s: %s/%d%s%s%s" % (
        getattr(board, "BOARD", "board"), ipv4.ntoa(r.addr), r.prefix_len,
        (" gw " + ipv4.ntoa(r.gateway)) if r.gateway is not None else "",
        (" dns " + " ".join(ipv4.ntoa(d) for d in dns)) if dns else "",
        " (DHCP)" if getattr(stack, "dhcp", None) is not None else " (static)")
