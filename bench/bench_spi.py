"""SPI cost per Ethernet frame of the chip drivers, counted on the chip models, and what it would
take on an RP2040. Not a CI gate.

    .venv/bin/python bench/bench_spi.py [--frames 20] [--sizes 60,590,1514] [--json]

Each board (boards/*.py) is brought up in this process as the virtual board does it
(host_tools/mp/virtual_board.py: the machine shim with the chip model wired to the board's SPI bus
and pins, tcpip.board.bring_up, the driver), with a list-backed link on the model's wire side. Per
frame size, `--frames` frames addressed to the board are received one at a time
(driver.recv_into, the call that returns the frame) and as many are sent (driver.send); the shim's
bus counters give the SPI bytes (clocked, both directions at once count once), the transactions
(CS-low periods) and the SPI calls of each. After a warm-up, so the figures are the steady state.
`idle poll` is one recv_into with nothing waiting (what a polling loop pays when the line is quiet).

The RP2040 estimate: each transaction costs T_TXN_US of call overhead (docs/ARCHITECTURE.md,
"What things cost on an RP2040": a 1-byte W5500 register read through machine.SPI and CS pin toggles takes ~61 us, of which its 4 bytes on the
bus are ~3 us at 12 MHz) plus its bytes at the SPI clock the rp2 port really makes for the board
file's BAUDRATE (48 MHz peripheral clock, even prescaler: machine_shim.rp2_spi_baudrate). The
stack's own work per frame is not included. Cross-check (the same table): a simple driver
receiving 1514 bytes takes ~1.7 ms at 12 MHz and ~1.2 ms at 24 MHz, i.e. ~0.69 ms besides the bus,
about 12 transactions at this rate. TCP ceilings: per full segment (1514-byte frame, MSS 1460) one
frame one way and half an ACK (60-byte frame) the other way, as with delayed ACKs every 2 segments.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("lib", os.path.join("host_tools", "mp"), "boards"):
    p = os.path.join(ROOT, sub)
    if p not in sys.path:
        sys.path.insert(0, p)

import machine_shim  # noqa: E402
from listlink import ListLink  # noqa: E402

BOARDS = ("w5500_evb_pico", "pico_enc28j60")
SIZES = (60, 590, 1514)
T_TXN_US = 58.0          # per transaction on an RP2040 (see above)
MSS = 1460
ACK_FRAME = 60
PEER_MAC = b"\x02\x00\x00\x00\x00\x09"
TARGETS = {"w5500": (1.03, 6), "enc28j60": (1.10, None)}  # at 1514 B: SPI B per frame B, rx txn


def frame(dst, size, seq):
    """An IPv4-typed Ethernet frame of size bytes (no FCS) to dst."""
    body = bytes((seq + i) & 0xFF for i in range(size - 14))
    return bytes(dst) + PEER_MAC + b"\x08\x00" + body


class Rig:
    def __init__(self, board_name):
        from virtual_board import VirtualBoard

        self.board = __import__(board_name)
        self.link = ListLink()
        self.vb = VirtualBoard(self.board, self.link, unique_id=b"\x10\x20\x30\x40\x50\x60\x70\x80")
        self.vb.bring_up("192.0.2.2/24", "192.0.2.1")
        self.nic = self.vb.driver
        self.buf = bytearray(1514 + 4)
        self.bus = self.board.SPI_ID

    def _snap(self):
        c = machine_shim.spi_counters(self.bus)
        return (c["bytes"], c["transactions"], c["calls"])

    def receive(self, f):
        self.link.inbox.append(f)
        a = self._snap()
        n = self.nic.recv_into(self.buf)
        b = self._snap()
        if n != len(f) or bytes(self.buf[:n]) != f:
            raise RuntimeError("received %d bytes, wanted the %d-byte frame" % (n, len(f)))
        return (b[0] - a[0], b[1] - a[1], b[2] - a[2])

    def send(self, f):
        before = len(self.link.sent)
        a = self._snap()
        self.nic.send(f, len(f))
        b = self._snap()
        got = self.link.sent[before:]
        # a frame goes out at SEND/TXRTS: during this send(), or (W5500) awaited at the next one
        return (b[0] - a[0], b[1] - a[1], b[2] - a[2]), got

    def idle(self):
        a = self._snap()
        n = self.nic.recv_into(self.buf)
        b = self._snap()
        if n:
            raise RuntimeError("idle poll returned a frame")
        return (b[0] - a[0], b[1] - a[1], b[2] - a[2])


def estimate_us(spi_bytes, txn, hz):
    return txn * T_TXN_US + spi_bytes * 8 * 1e6 / hz


def measure(board_name, sizes, frames):
    """One board: rows per size and direction, idle poll, clocks. Raises if the chip is missing."""
    machine_shim.reset_board()
    try:
        rig = Rig(board_name)
    finally:
        machine_shim.uninstall()
    machine_shim.install()
    try:
        mac = rig.nic.mac
        bus = machine_shim.spi_counters(rig.bus)
        hz = bus["actual_baudrate"]
        for i in range(4):  # warm-up: first frames pay one-off costs
            rig.receive(frame(mac, 590, i))
            rig.send(frame(PEER_MAC, 590, i))
        rows = []
        out_frames = 0
        wanted = 0
        for size in sizes:
            for direction in ("rx", "tx"):
                tot = [0, 0, 0]
                for i in range(frames):
                    if direction == "rx":
                        d = rig.receive(frame(mac, size, i))
                    else:
                        d, got = rig.send(frame(PEER_MAC, size, i))
                        out_frames += len(got)
                        wanted += 1
                    for k in range(3):
                        tot[k] += d[k]
                spi_b, txn, calls = tot[0] / frames, tot[1] / frames, tot[2] / frames
                rows.append({"size": size, "dir": direction, "spi_bytes": spi_b, "per_byte": spi_b / size,
                             "transactions": txn, "calls": calls, "us": estimate_us(spi_b, txn, hz)})
        rig.send(frame(PEER_MAC, 60, 0))  # the last frame's SEND may be awaited at the next send
        idle = rig.idle()
        return {"board": board_name, "name": getattr(rig.board, "BOARD", board_name),
                "chip": rig.board.CHIP, "baudrate": rig.board.BAUDRATE, "spi_hz": hz, "rows": rows,
                "idle": {"spi_bytes": idle[0], "transactions": idle[1], "calls": idle[2],
                         "us": estimate_us(idle[0], idle[1], hz)},
                "tx_delivered": out_frames >= wanted,
                "wiring_errors": machine_shim.spi_counters(rig.bus)["wiring_errors"],
                "bring_up": rig.vb.how}
    finally:
        machine_shim.uninstall()
        machine_shim.reset_board()


def row_of(res, size, direction):
    for r in res["rows"]:
        if r["size"] == size and r["dir"] == direction:
            return r
    return None


def ceilings(res):
    """Frames/s and TCP payload Mbit/s each direction, from the 1514- and 60-byte rows."""
    rx_full, tx_full = row_of(res, 1514, "rx"), row_of(res, 1514, "tx")
    rx_ack, tx_ack = row_of(res, 60, "rx"), row_of(res, 60, "tx")
    if None in (rx_full, tx_full, rx_ack, tx_ack):
        return None
    down_us = rx_full["us"] + tx_ack["us"] / 2
    up_us = tx_full["us"] + rx_ack["us"] / 2
    return {"rx_frames_s": 1e6 / rx_full["us"], "tx_frames_s": 1e6 / tx_full["us"],
            "down_mbit": MSS * 8 / down_us, "up_mbit": MSS * 8 / up_us}


def format_tables(results):
    out = []
    out.append("SPI per frame: driver + chip model in-process (virtual-board wiring, INT pin as the board "
               "has it); averages over the measured frames")
    out.append("%-16s %-9s %7s %3s %8s %7s %5s %6s %10s" % (
        "board", "chip", "frame_B", "dir", "SPI_B", "B/B", "txn", "calls", "rp2040_us"))
    for res in results:
        if "error" in res:
            out.append("%-16s %-9s %s" % (res["name"], res.get("chip", "?"), "not measured: " + res["error"]))
            continue
        for r in res["rows"]:
            out.append("%-16s %-9s %7d %3s %8.1f %7.3f %5.1f %6.1f %10.0f" % (
                res["name"], res["chip"], r["size"], r["dir"], r["spi_bytes"], r["per_byte"],
                r["transactions"], r["calls"], r["us"]))
        i = res["idle"]
        out.append("%-16s %-9s %7s %3s %8d %7s %5d %6d %10.0f" % (
            res["name"], res["chip"], "idle", "rx", i["spi_bytes"], "-", i["transactions"], i["calls"], i["us"]))
    out.append("")
    out.append("RP2040 estimate: %g us per transaction + the bytes at the SPI clock rp2 makes; stack work "
               "excluded" % T_TXN_US)
    out.append("%-16s %-22s %9s %9s %9s %9s %10s %10s" % (
        "board", "SPI clock asked->real", "rx1514us", "tx1514us", "rx_fps", "tx_fps", "down_Mbit", "up_Mbit"))
    for res in results:
        if "error" in res:
            continue
        c = ceilings(res)
        clock = "%g->%g MHz" % (res["baudrate"] / 1e6, res["spi_hz"] / 1e6)
        if c is None:
            out.append("%-16s %-22s (needs the 60 and 1514 B sizes)" % (res["name"], clock))
            continue
        out.append("%-16s %-22s %9.0f %9.0f %9.0f %9.0f %10.2f %10.2f" % (
            res["name"], clock, row_of(res, 1514, "rx")["us"], row_of(res, 1514, "tx")["us"],
            c["rx_frames_s"], c["tx_frames_s"], c["down_mbit"], c["up_mbit"]))
    out.append("")
    for res in results:
        if "error" in res:
            continue
        t = TARGETS.get(res["chip"])
        rx = row_of(res, 1514, "rx")
        tx = row_of(res, 1514, "tx")
        if t is None or rx is None or tx is None:
            continue
        worst = max(rx["per_byte"], tx["per_byte"])
        line = "targets %s at 1514 B: %.3f SPI B per frame B (target <= %.2f: %s)" % (
            res["chip"], worst, t[0], "met" if worst <= t[0] else "MISSED")
        if t[1] is not None:
            line += "; %.1f transactions per received frame (target <= %d: %s)" % (
                rx["transactions"], t[1], "met" if rx["transactions"] <= t[1] else "MISSED")
        out.append(line)
        if res["wiring_errors"] or not res["tx_delivered"]:
            out.append("  WARNING %s: wiring errors %d, all sent frames delivered: %s" % (
                res["chip"], res["wiring_errors"], res["tx_delivered"]))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=20, help="frames per size and direction (default 20)")
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                    help="frame sizes in bytes without FCS, 60..1514 (default 60,590,1514)")
    ap.add_argument("--boards", default=",".join(BOARDS), help="board files (default: %s)" % ",".join(BOARDS))
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if not sizes or any(s < 60 or s > 1514 for s in sizes) or args.frames < 1:
        ap.error("sizes must be 60..1514 and --frames >= 1")
    results = []
    failed = False
    for name in args.boards.split(","):
        try:
            results.append(measure(name, sizes, args.frames))
        except Exception as exc:  # a chip whose driver or model is missing: say so, go on
            failed = True
            results.append({"board": name, "name": name, "error": "%s: %s" % (type(exc).__name__, exc)})
    if args.json:
        print(json.dumps({"t_txn_us": T_TXN_US, "results": results}))
    else:
        print(format_tables(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
