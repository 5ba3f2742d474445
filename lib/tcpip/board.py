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
Drivers and DHCP/DNS are imported only when used, so a bundle may carry one driver. The steps
that touch the hardware, the link, DHCP and DNS are tcpip.board_init: bring_up() loads it and drops
it when it returns, so that code goes back to the heap once the board is up (as Linux frees its
__init sections after boot). Its functions (open_nic, wait_link, driver_class, status_line) are
also reachable here as tcpip.board.<name>: loaded for the call, not kept.
"""
from tcpip import drop
from tcpip.stack import Stack

# CHIP -> (module, class); each driver takes (spi, cs, reset=, mac=, int_pin=, clock=)
CHIPS = {
    "w5500": ("tcpip.drivers.w5500", "W5500"),
    "enc28j60": ("tcpip.drivers.enc28j60", "Enc28j60"),
}
REQUIRED = ("CHIP", "SPI_ID", "SCK", "MOSI", "MISO", "CS", "BAUDRATE")
LINK_TIMEOUT_MS = 5000    # auto-negotiation takes 1.5-3 s after a PHY reset (W5500, ENC28J60 10BASE-T)
DHCP_TIMEOUT_MS = 15000   # DISCOVER is retried with backoff (RFC 2131 4.1); a LAN answers in < 1 s


class BoardError(OSError):
    """Bring-up failed; str() says what and what to check, .reason names the step."""
    reason: str | None = None


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


def mac_text(mac):
    return ":".join("%02x" % b for b in mac)


def _init():
    from tcpip import board_init

    return board_init


def __getattr__(name):
    # open_nic, wait_link, driver_class, status_line: tcpip.board_init's, which is not kept
    if name.startswith("_"):
        raise AttributeError(name)
    init = _init()
    try:
        return getattr(init, name)
    finally:
        drop("tcpip.board_init")


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
    if isinstance(board, str):
        board = load_board(board)
    init = _init()
    try:
        nic, clock, say = init.prepare(board, dhcp, addr, gateway, mac, clock, link_timeout_ms,
                                       machine, driver, log)
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
        init.finish(stack, dns, hostname, timeout_ms, say, log)
        return stack
    finally:
        drop("tcpip.board_init")
