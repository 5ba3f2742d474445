"""The failure half of tcpip.board: the text of every BoardError (what failed and what to
check), and the board-file search behind it. Imported only when a bring-up step fails, so a board
that comes up never loads it."""
from tcpip.board import CHIPS, BoardError


def known_boards():
    """Names of the board files found in <each sys.path entry>/boards (sorted, no duplicates)."""
    import os
    import sys

    found = []
    for p in sys.path:
        d = (p + "/boards") if p else "boards"
        try:
            names = os.listdir(d)
        except OSError:  # no such folder, or .frozen
            continue
        for n in names:
            for ext in (".py", ".mpy"):
                if n.endswith(ext) and n[0] != "_":
                    n = n[:-len(ext)]
                    if n not in found:
                        found.append(n)
    found.sort()
    return found




def wiring(board):
    """'SPI0 SCK GP18 MOSI GP19 MISO GP16 CS GP17 RST GP20 at 24 MHz'."""
    text = "SPI%s SCK GP%s MOSI GP%s MISO GP%s CS GP%s" % (
        board.SPI_ID, board.SCK, board.MOSI, board.MISO, board.CS)
    if getattr(board, "RST", None) is not None:
        text += " RST GP%s" % board.RST
    return text + " at %g MHz" % (board.BAUDRATE / 1000000)


def _text(reason, a):
    if reason == "bad-name":
        return "bad board name %r: the file name of boards/<name>.py, e.g. 'w5500_evb_pico'" % (a[0],)
    if reason == "no-board-file":
        known = known_boards()
        return "no board file boards/%s.py (%s); known boards: %s" % (
            a[0], a[1], ", ".join(known) if known else "none found on sys.path")
    if reason == "board-lacks":
        return "board file %s lacks %s" % (a[0], ", ".join(a[1]))
    if reason == "unknown-chip":
        return "unknown CHIP %r in the board file; supported: %s" % (a[0], ", ".join(sorted(CHIPS)))
    if reason == "no-driver":
        return "the %s driver (%s) is not installed: %s" % a
    if reason == "no-machine":
        return ("no `machine` module: bring_up runs on a board, or on the unix port with "
                "host_tools/mp/machine_shim.py installed")
    if reason == "no-spi":
        return ("this `machine` module has no SPI/Pin (the unix port's): bring_up runs on a board, "
                "or with host_tools/mp/machine_shim.py installed")
    if reason == "no-chip":
        return ("no %s answers on %s (%s): %s. Check the wiring, the module's power (3.3 V) and the "
                "board file" % (a[0], a[1], wiring(a[2]), a[3]))
    if reason == "no-address":
        return "no address for %s: pass addr='a.b.c.d/n' or dhcp=True" % a
    if reason == "bad-address":
        return ("bad static address %r / gateway %r: %s (want 'a.b.c.d/n' and a gateway on that "
                "network)" % a)
    if reason == "no-link":
        return ("%s: no Ethernet link after %d ms: plug the cable into a switch or router port (and "
                "check its link LED)" % a)
    if reason == "dhcp-timeout":
        return ("%s: no DHCP lease within %d ms: is a DHCP server on this network? (or pass "
                "addr='a.b.c.d/n' for a static address)" % a)
    return reason


# the step each text belongs to (BoardError.reason)
_REASON = {"bad-name": "bad-board", "no-board-file": "bad-board", "board-lacks": "bad-board",
           "no-driver": "unknown-chip", "no-spi": "no-machine"}


def error(reason, args):
    e = BoardError(_text(reason, args))
    e.reason = _REASON.get(reason, reason)
    return e
