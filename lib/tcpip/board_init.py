"""The bring-up half of tcpip.board: SPI and pins from a board file, the chip driver, the link,
DHCP and DNS. tcpip.board.bring_up() imports this module and drops it again when it returns, so
its code is back in the heap while the board runs; its functions are also reachable as
tcpip.board.<name> (loaded for the call, not kept).
"""
from tcpip.board import CHIPS, _fail, check_board
from tcpip.clock import Clock, ticks_diff
from tcpip.route import Route

_LINK_POLL_MS = 50


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


def prepare(board, dhcp, addr, gateway, mac, clock, link_timeout_ms, machine, driver, log):
    """bring_up's steps before the Stack: the arguments checked, the chip driver, the link.
    Returns (nic, clock, say)."""
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
    say("%s: %s ready, mac %s" % (name, board.CHIP, ":".join("%02x" % b for b in nic.mac)))
    if link_timeout_ms is not None:
        if not wait_link(nic, clock, link_timeout_ms):
            raise _fail("no-link", name, link_timeout_ms)
        say("%s: link up" % name)
    return nic, clock, say


def finish(stack, dns, hostname, timeout_ms, say, log):
    """bring_up's steps after the Stack: DHCP (without a static address), the DNS servers and
    resolver, tcpip.socket's default stack, the status line."""
    from tcpip import socket as tsocket

    name = getattr(stack.board, "BOARD", "board")
    stack.dhcp = None
    stack.resolver = None
    servers = _servers(dns)
    if not stack.route.configured():
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
