# The virtual board: the MicroPython unix port runs the firmware path of a real board --
#   board file (boards/*.py) -> machine shim SPI and Pins -> chip driver (lib/tcpip/drivers) -> Stack
# -- against a register-level model of the chip (host_tools/mp/*_model.py), wired to the shim's SPI
# bus and pins. The model's wire side is a UdpFrameDevice to the CLI's frame bridge, which holds the
# TAP: so `python -m host_tools connect --runtime virtual-w5500|virtual-enc28j60` reaches a Linux peer
# through the driver code, every SPI byte of it counted.
#
#     MICROPYPATH=lib:host_tools/mp:firmware:boards micropython host_tools/mp/virtual_board.py   (config on stdin)
#
# The config (one JSON line on stdin, as firmware/connect_main.py takes it from host_tools/cli.py) adds
# "board": the board module's name (a file in boards/, e.g. "w5500_evb_pico"), and optionally
# "unique_id" (hex, what machine.unique_id() returns: the drivers derive the MAC from it).
# The session is connect_main's (same messages, same timeline); the start message also has board,
# chip, spi_hz (the clock rp2 would really make) and heap; the result message also has "spi":
#   {"bus": the shim's counters for the board's SPI bus (transactions, bytes, calls, wiring_errors,
#            errors, baudrate, actual_baudrate),
#    "model": the chip model's counters (spi_transactions, spi_bytes, per-chip ones),
#    "driver": the driver's counters, "board": board name, "chip": CHIP}
#
# Which driver and model: CHIPS below by the board's CHIP, or the board file's own DRIVER and MODEL
# ("module:Class") for a chip this table does not know (tests/device/fifo_board.py does that).
# Bring-up: lib/tcpip/board.py bring_up(board, dhcp=False, addr=..., gateway=..., driver=...) as the
# firmware does it, else (a library without tcpip.board) the same steps here: SPI and Pins from the
# board file, the driver, the Stack.
# MicroPython-compatible (and importable on CPython, where tests use VirtualBoard in-process).
import gc
import sys

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

import machine_shim

CHIPS = {
    "w5500": ("tcpip.drivers.w5500:W5500", "w5500_model:W5500Model"),
    "enc28j60": ("tcpip.drivers.enc28j60:Enc28j60", "enc28j60_model:Enc28j60Model"),
}
TCP_OPTIONS = ("syn_retries", "rx_buffer", "tx_buffer")


def load(spec):
    """"package.module:Name" -> the object."""
    modname, _, name = spec.partition(":")
    mod = __import__(modname, None, None, [name])
    return getattr(mod, name)


def as_dict(obj):
    """Counters of a model or driver as a plain dict: a dict, snapshot()/nonzero(), a callable, or
    the integer attributes of an object."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    for meth in ("snapshot", "as_dict"):
        f = getattr(obj, meth, None)
        if f is not None:
            return dict(f())
    if callable(obj):
        return as_dict(obj())
    out = {}
    d = getattr(obj, "__dict__", None)
    if d:
        for k in d:
            v = d[k]
            if isinstance(v, int) and not isinstance(v, bool) and not k.startswith("_"):
                out[k] = v
    return out


def model_counters(model):
    c = getattr(model, "counters", None)
    out = as_dict(c) if c is not None else {}
    for k in ("spi_transactions", "spi_bytes"):
        v = getattr(model, k, None)
        if isinstance(v, int):
            out[k] = v
    if c is None:
        out.update(as_dict(model))
    return out


class VirtualBoard:
    """VirtualBoard(board_module, link): wires the chip model for board_module.CHIP to the shim's
    bus and pins (as the board file says) and installs the shim as `machine`. bring_up() then
    builds the driver and the Stack through the firmware path."""

    def __init__(self, board, link, unique_id=None, fresh=True):
        self.board = board
        self.link = link
        if fresh:
            machine_shim.reset_board()
        if unique_id is not None:
            machine_shim.set_unique_id(unique_id)
        machine_shim.install()  # before the driver's module is imported: it may `import machine`
        driver_spec, model_spec = self.chip_specs(board)
        self.driver_class = load(driver_spec)
        self.model = load(model_spec)(link=link)
        machine_shim.wire(board.SPI_ID, board.CS, self.model, getattr(board, "RST", None),
                          getattr(board, "INT", None))
        self.driver = None
        self.stack = None
        self.how = None

    @staticmethod
    def chip_specs(board):
        own = getattr(board, "DRIVER", None), getattr(board, "MODEL", None)
        if own[0] is not None and own[1] is not None:
            return own
        chip = getattr(board, "CHIP", None)
        if chip not in CHIPS:
            raise ValueError("board %s: no chip model for CHIP %r (have %s)" % (
                getattr(board, "BOARD", "?"), chip, ", ".join(sorted(CHIPS))))
        return CHIPS[chip]

    def bring_up(self, addr, gateway=None, tcp_options=None, clock=None):
        """The driver and a Stack with a static address, as the firmware makes them: through
        tcpip.board.bring_up when the library has it, else the same steps here."""
        from tcpip.tcp import TcpConfig

        board = self.board
        kw = {}
        for k in TCP_OPTIONS:
            if tcp_options and tcp_options.get(k) is not None:
                kw[k] = tcp_options[k]
        try:
            from tcpip import board as fw
        except ImportError:
            fw = None
        if fw is not None:
            self.how = "tcpip.board.bring_up"
            stack = fw.bring_up(board, dhcp=False, addr=addr, gateway=gateway, clock=clock,
                                tcp_config=TcpConfig(**kw), driver=self.driver_class)
            self.driver = stack.device
        else:
            self.how = "virtual_board.py (no tcpip.board)"
            from tcpip.stack import Stack

            import machine

            Pin = machine.Pin
            spi = machine.SPI(board.SPI_ID, baudrate=board.BAUDRATE, sck=Pin(board.SCK),
                              mosi=Pin(board.MOSI), miso=Pin(board.MISO))
            cs = Pin(board.CS, Pin.OUT, value=1)
            rst = Pin(board.RST, Pin.OUT, value=1) if getattr(board, "RST", None) is not None else None
            irq = Pin(board.INT, Pin.IN, Pin.PULL_UP) if getattr(board, "INT", None) is not None else None
            self.driver = self.driver_class(spi, cs, reset=rst, int_pin=irq, clock=clock)
            stack = Stack(self.driver, clock=clock, addr=addr, gateway=gateway, tcp_config=TcpConfig(**kw))
        self.stack = stack
        return stack

    def spi_counters(self):
        return {"bus": machine_shim.spi_counters(self.board.SPI_ID),
                "model": model_counters(self.model),
                "driver": as_dict(getattr(self.driver, "counters", None)),
                "board": getattr(self.board, "BOARD", None), "chip": getattr(self.board, "CHIP", None)}

    def describe(self):
        b = self.board
        bus = machine_shim.spi_counters(b.SPI_ID)
        return {"board": getattr(b, "BOARD", None), "chip": getattr(b, "CHIP", None),
                "spi_id": b.SPI_ID, "cs": b.CS, "rst": getattr(b, "RST", None),
                "int": getattr(b, "INT", None), "spi_hz": bus["actual_baudrate"],
                "bring_up": self.how}


# -- MicroPython entry point -------------------------------------------------------------------
def main(argv=None):
    argv = sys.argv if argv is None else argv
    if len(argv) > 2:
        print("usage: micropython virtual_board.py [CONFIG_JSON]   (else: config on stdin's first line)")
        sys.exit(2)
    cfg = json.loads(argv[1] if len(argv) == 2 else sys.stdin.readline())
    from connect_main import emit_line, run_config
    from udp_device import UdpFrameDevice

    board = __import__(cfg["board"])
    link = UdpFrameDevice(cfg["bridge_port"], mtu=cfg.get("mtu", 1500))
    try:
        uid = cfg.get("unique_id")
        vb = VirtualBoard(board, link, unique_id=bytes.fromhex(uid) if uid else None)
        stack = vb.bring_up(cfg["addr"], cfg.get("gateway"), cfg)
        gc.collect()
        extra = {"bridge_port": cfg["bridge_port"]}
        extra.update(vb.describe())
        extra["heap"] = {"alloc": gc.mem_alloc(), "free": gc.mem_free()} if hasattr(gc, "mem_alloc") else None

        def emit(msg):
            if msg.get("type") == "result":
                msg["spi"] = vb.spi_counters()
            emit_line(msg)

        run_config(stack, cfg, extra, emit)
    finally:
        link.close()


if __name__ == "__main__":
    main()
