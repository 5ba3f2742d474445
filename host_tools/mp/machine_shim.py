# machine_shim: the parts of MicroPython's `machine` module that the tcpip firmware touches, for the
# unix port (the virtual board) and CPython (tests), with wire() binding a chip model to pins and a bus.
#
#     import machine_shim
#     machine_shim.wire(0, 17, W5500Model(link), reset_pin=20, int_pin=21)  # SPI0, CS GP17, ...
#     machine_shim.install()          # from now on `import machine` gives this module
#     import machine
#     spi = machine.SPI(0, baudrate=24_000_000, sck=machine.Pin(18), mosi=machine.Pin(19), miso=machine.Pin(16))
#     cs = machine.Pin(17, machine.Pin.OUT, value=1)
#
# install() puts this module in sys.modules["machine"]: `import` looks there first, on the unix port
# too, whose built-in machine (no SPI, no Pin) it then shadows. (A file named machine.py on
# MICROPYPATH also shadows that built-in, tried on 1.29; install() needs no such file.)
#
# Pins are board pins: Pin(17) twice is the same pin (state lives in a registry keyed by the id), as
# on a board. A wired chip sees what its pins really do:
#   CS pin     a high->low edge of the driven level calls model.select() (a transaction starts and
#              is counted), low->high calls model.deselect();
#   SPI calls  reach model.xfer(wbuf, rbuf, n) of the one chip whose CS is low; with no CS low (or
#              two at once) the call is a wiring error: counted, MISO reads 0xFF, nothing reaches
#              a chip;
#   reset pin  each change of the driven level calls model.reset_pin(level);
#   INT pin    value() reads model.int_level() (0 = asserted).
# The driven level of a pin is its output latch while it is an output, else what the outside
# gives it (pull-up 1, pull-down 0; CS and reset lines idle high: the modules pull them up).
# Writing value() on a CS or reset pin that is not an output is a wiring error too (the latch
# changes, the line does not). Bus settings are checked against the rp2 port and the chip: SPI0/1
# pin numbers as the RP2040 allows them (ValueError, as rp2 raises), the clock rp2 really makes
# (48 MHz peripheral clock, pico-sdk spi_set_baudrate), and per chip (model.spi_modes, model.spi_max_hz
# when the model has them) a mode or clock it cannot take: counted as wiring errors per transfer.
#
# Counters per bus (spi_counters(id)): transactions (CS low periods), bytes (clocked), calls
# (write/readinto/write_readinto/read calls), wiring_errors and errors by reason.
#
# Pin.irq() is polled: the handler runs when a read of the pin (value(), idle()) sees the edge.
# MicroPython-compatible: no f-strings, no typing; nothing allocated per SPI call in steady state.
import sys

try:
    import os
except ImportError:  # pragma: no cover - both runtimes have os
    os = None

PWRON_RESET = 1
WDT_RESET = 3
SOFT_RESET = 5
HARD_RESET = 2
DEEPSLEEP_RESET = 4

PERIPHERAL_HZ = 48000000   # MicroPython's rp2 port clocks peripherals (SPI) from the 48 MHz USB PLL
DEFAULT_CPU_HZ = 125000000

# RP2040 SPI pin functions (datasheet 1.4.3, GPIO function table): bus -> (SCK, MOSI/TX, MISO/RX)
RP2040_SPI_PINS = {
    0: ((2, 6, 18, 22), (3, 7, 19, 23), (0, 4, 16, 20)),
    1: ((10, 14, 26), (11, 15, 27), (8, 12, 24, 28)),
}

_pins = {}        # pin id -> _PinState
_buses = {}       # spi id -> _Bus
_state = {"unique_id": None, "freq": DEFAULT_CPU_HZ, "reset_cause": PWRON_RESET, "resets": 0,
          "idle_calls": 0}
_saved_machine = []   # what sys.modules["machine"] held before install()


class WiringError(Exception):
    pass


def rp2_spi_baudrate(baudrate, clk_peri=PERIPHERAL_HZ):
    """The SPI clock the rp2 port really makes for a requested baudrate (pico-sdk spi_set_baudrate:
    an even prescaler 2..254 times a post-divider 1..256, the highest clock not above the request)."""
    if baudrate <= 0:
        return 0
    prescale = 2
    while prescale <= 254:
        if clk_peri < (prescale + 2) * 256 * baudrate:
            break
        prescale += 2
    if prescale > 254:
        prescale = 254
    postdiv = 256
    while postdiv > 1:
        if clk_peri // (prescale * (postdiv - 1)) > baudrate:
            break
        postdiv -= 1
    return clk_peri // (prescale * postdiv)


def _pin_id(p):
    if isinstance(p, Pin):
        return p._s.id
    return p


# -- pins ----------------------------------------------------------------------------------------
class _PinState:
    def __init__(self, pid):
        self.id = pid
        self.mode = Pin.IN
        self.pull = None
        self.latch = 0
        self.driven = -1          # level last passed to the wired roles (-1: not yet computed)
        self.cs_of = None         # _Chip whose chip select this pin is
        self.reset_of = None      # model whose reset line this is
        self.int_of = None        # model whose INTn output this pin reads
        self.bus = None           # the _Bus of the chip a CS or reset pin belongs to
        self.handler = None
        self.trigger = 0
        self.irq_last = -1
        self.writes = 0

    def outside_level(self):
        """The line's level when this side does not drive it."""
        if self.int_of is not None:
            return 1 if self.int_of.int_level() else 0
        if self.pull == Pin.PULL_UP:
            return 1
        if self.pull == Pin.PULL_DOWN:
            return 0
        if self.cs_of is not None or self.reset_of is not None:
            return 1  # the chip modules pull CS and RSTn up
        return 0

    def level(self):
        if self.mode == Pin.OUT:
            return self.latch
        if self.mode == Pin.OPEN_DRAIN and self.latch == 0:
            return 0
        return self.outside_level()

    def apply(self):
        """Pass a change of the driven level to the chip the pin is wired to."""
        if self.bus is None:
            return
        new = self.level()
        if new == self.driven:
            return
        self.driven = new
        if self.cs_of is not None:
            self.cs_of.cs_edge(new)
        if self.reset_of is not None:
            self.reset_of.reset_pin(new)

    def check_irq(self, level):
        last = self.irq_last
        self.irq_last = level
        if self.handler is None or last == -1 or last == level:
            return
        if (level == 0 and self.trigger & Pin.IRQ_FALLING) or (level == 1 and self.trigger & Pin.IRQ_RISING):
            self.handler(_pin_object(self))


def _pin_state(pid):
    s = _pins.get(pid)
    if s is None:
        s = _PinState(pid)
        _pins[pid] = s
    return s


def _pin_object(state):
    return Pin(state.id)  # no mode/pull/value: the pin keeps its configuration


class _Irq:
    def __init__(self, state):
        self._s = state

    def flags(self):
        return self._s.trigger

    def trigger(self, t=None):
        if t is not None:
            self._s.trigger = t
        return self._s.trigger


class PinCalls:
    """What every machine.Pin offers over its value(v=None): pin(v), on(), off(), high(), low().
    The one copy: Pin here, tests/host/spi_fake.py's pins and test_board's recorder extend it."""

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)


class Pin(PinCalls):
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        self._s = _pin_state(_pin_id(id))
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kw):
        s = self._s
        if value is not None:
            s.latch = 1 if value else 0   # rp2 sets the output value before the direction
        if mode is not None and mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN, Pin.ALT):
                raise ValueError("invalid pin mode %r" % (mode,))
            s.mode = mode
        if pull != -1:
            s.pull = pull
        s.apply()

    def value(self, v=None):
        s = self._s
        if v is None:
            level = s.level()
            s.check_irq(level)
            return level
        s.writes += 1
        s.latch = 1 if v else 0
        if s.mode != Pin.OUT and s.mode != Pin.OPEN_DRAIN and s.bus is not None:
            s.bus.error("pin %s written while not an output" % (s.id,))
            return None
        s.apply()
        return None

    def toggle(self):
        self.value(1 - self._s.latch)

    def mode(self, m=None):
        if m is None:
            return self._s.mode
        self.init(m)

    def pull(self, p=-1):
        if p == -1:
            return self._s.pull
        self.init(-1, p)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False, **kw):
        s = self._s
        s.handler = handler
        s.trigger = trigger if handler is not None else 0
        s.irq_last = s.level()
        return _Irq(s)

    def id(self):
        return self._s.id

    def __repr__(self):
        return "Pin(%s, mode=%s)" % (self._s.id, ("IN", "OUT", "OPEN_DRAIN", "ALT")[self._s.mode])


class Signal:
    """machine.Signal: a Pin with optional inversion."""

    def __init__(self, pin, *args, **kw):
        self.pin = pin if isinstance(pin, Pin) else Pin(pin, *args)
        self.invert = kw.get("invert", False)

    def value(self, v=None):
        if v is None:
            return self.pin.value() ^ (1 if self.invert else 0)
        self.pin.value((1 if v else 0) ^ (1 if self.invert else 0))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


# -- SPI -----------------------------------------------------------------------------------------
class _Chip:
    """One chip model on a bus, with its chip select."""

    def __init__(self, bus, model, cs):
        self.bus = bus
        self.model = model
        self.cs = cs
        self.selected = False
        self.transactions = 0

    def cs_edge(self, level):
        bus = self.bus
        if level == 0:
            if self.selected:
                return
            self.selected = True
            self.transactions += 1
            bus.transactions += 1
            bus.n_selected += 1
            if bus.n_selected == 1:
                bus.current = self
            else:
                bus.error("two chip selects low at once")
                bus.current = None
            self.model.select()
        else:
            if not self.selected:
                return
            self.selected = False
            bus.n_selected -= 1
            bus.current = None
            if bus.n_selected == 1:
                for c in bus.chips:
                    if c.selected:
                        bus.current = c
            self.model.deselect()


class _Bus:
    def __init__(self, bus_id):
        self.id = bus_id
        self.chips = []
        self.current = None      # the one selected chip, None when none (or contention)
        self.n_selected = 0
        self.transactions = 0
        self.bytes = 0
        self.calls = 0
        self.wiring_errors = 0
        self.errors = {}
        self.baudrate = 0
        self.actual_baudrate = 0
        self.polarity = 0
        self.phase = 0
        self.bits = 8
        self.firstbit = 0
        self.pins = (None, None, None)
        self.inited = False
        self.settings_ok = True
        self.settings_why = None
        self._fill = bytearray(0)
        self._fill_byte = -1

    def error(self, why):
        self.wiring_errors += 1
        self.errors[why] = self.errors.get(why, 0) + 1

    def check_settings(self):
        why = None
        if self.bits != 8:
            why = "bits=%d (chips here take 8)" % self.bits
        elif self.firstbit != SPI.MSB:
            why = "firstbit LSB (chips here shift MSB first)"
        for c in self.chips:
            modes = getattr(c.model, "spi_modes", None)
            if why is None and modes is not None and (self.polarity, self.phase) not in modes:
                why = "SPI mode polarity=%d phase=%d not supported by the chip" % (self.polarity, self.phase)
            top = getattr(c.model, "spi_max_hz", None)
            if why is None and top is not None and self.actual_baudrate > top:
                why = "SPI clock %d Hz above the chip's %d Hz" % (self.actual_baudrate, top)
        self.settings_ok = why is None
        self.settings_why = why

    def fill(self, byte, n):
        if len(self._fill) < n or self._fill_byte != byte:
            size = n if n > len(self._fill) else len(self._fill)
            self._fill = bytearray(size)
            for i in range(size):
                self._fill[i] = byte
            self._fill_byte = byte
        return self._fill

    def xfer(self, wbuf, rbuf, n):
        self.calls += 1
        self.bytes += n
        chip = self.current
        if chip is None or not self.inited or not self.settings_ok:
            if chip is None:
                self.error("SPI transfer with no chip selected" if self.n_selected == 0
                           else "SPI transfer with two chips selected")
            elif not self.inited:
                self.error("SPI transfer on a deinit()ed bus")
            else:
                self.error(self.settings_why)
            if rbuf is not None:
                for i in range(n):
                    rbuf[i] = 0xFF  # nobody drives MISO: the line floats high
            return
        chip.model.xfer(wbuf, rbuf, n)

    def counters(self):
        return {"transactions": self.transactions, "bytes": self.bytes, "calls": self.calls,
                "wiring_errors": self.wiring_errors, "errors": dict(self.errors),
                "baudrate": self.baudrate, "actual_baudrate": self.actual_baudrate}

    def reset_counters(self):
        self.transactions = 0
        self.bytes = 0
        self.calls = 0
        self.wiring_errors = 0
        self.errors = {}
        for c in self.chips:
            c.transactions = 0


def _bus(bus_id):
    b = _buses.get(bus_id)
    if b is None:
        b = _Bus(bus_id)
        _buses[bus_id] = b
    return b


class SPI:
    MSB = 0
    LSB = 1
    CONTROLLER = 0

    def __init__(self, id=0, baudrate=None, polarity=None, phase=None, bits=None, firstbit=None,
                 sck=None, mosi=None, miso=None, **kw):
        if id not in RP2040_SPI_PINS:
            raise ValueError("SPI(%s) doesn't exist" % (id,))
        self._b = _bus(id)
        fresh = not self._b.inited
        if fresh or baudrate is not None or polarity is not None or phase is not None or bits is not None \
                or firstbit is not None or sck is not None or mosi is not None or miso is not None:
            self.init(baudrate if baudrate is not None else (1000000 if fresh else self._b.baudrate),
                      polarity, phase, bits, firstbit, sck, mosi, miso)

    def init(self, baudrate=None, polarity=None, phase=None, bits=None, firstbit=None, sck=None,
             mosi=None, miso=None, **kw):
        b = self._b
        names = ("SCK", "MOSI", "MISO")
        given = (sck, mosi, miso)
        pins = list(b.pins)
        for i in range(3):
            if given[i] is None:
                continue
            pid = _pin_id(given[i])
            if pid not in RP2040_SPI_PINS[b.id][i]:
                raise ValueError("bad %s pin" % names[i])
            pins[i] = pid
        b.pins = (pins[0], pins[1], pins[2])
        if baudrate is not None:
            b.baudrate = baudrate
            b.actual_baudrate = rp2_spi_baudrate(baudrate)
        if polarity is not None:
            b.polarity = polarity
        if phase is not None:
            b.phase = phase
        if bits is not None:
            b.bits = bits
        if firstbit is not None:
            b.firstbit = firstbit
        b.inited = True
        b.check_settings()

    def deinit(self):
        self._b.inited = False

    def write(self, buf):
        self._b.xfer(buf, None, len(buf))

    def readinto(self, buf, write=0x00):
        n = len(buf)
        if write & 0xFF:
            self._b.xfer(self._b.fill(write & 0xFF, n), buf, n)
        else:
            self._b.xfer(None, buf, n)

    def read(self, nbytes, write=0x00):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def write_readinto(self, write_buf, read_buf):
        n = len(write_buf)
        if len(read_buf) != n:
            raise ValueError("buffers must be the same length")
        self._b.xfer(write_buf, read_buf, n)

    def counters(self):
        return self._b.counters()

    def __repr__(self):
        b = self._b
        return "SPI(%d, baudrate=%d, polarity=%d, phase=%d, bits=%d, sck=%s, mosi=%s, miso=%s)" % (
            b.id, b.actual_baudrate, b.polarity, b.phase, b.bits, b.pins[0], b.pins[1], b.pins[2])


SoftSPI = SPI


# -- wiring a chip -------------------------------------------------------------------------------
def _free_pin(pin):
    s = _pin_state(_pin_id(pin))
    if s.cs_of is not None or s.reset_of is not None or s.int_of is not None:
        raise WiringError("pin %s is wired already" % (s.id,))
    return s


def wire(spi_id, cs_pin, model, reset_pin=None, int_pin=None):
    """Bind a chip model to SPI bus spi_id with chip select cs_pin (a pin number or Pin), and
    optionally its reset line and INT output. Returns the model. A line already low at this point
    (CS or reset driven low) reaches the chip at once."""
    if spi_id not in RP2040_SPI_PINS:
        raise ValueError("SPI(%s) doesn't exist" % (spi_id,))
    b = _bus(spi_id)
    cs = _free_pin(cs_pin)
    r = _free_pin(reset_pin) if reset_pin is not None else None
    p = _free_pin(int_pin) if int_pin is not None else None
    if r is cs or (p is not None and (p is cs or p is r)):
        raise WiringError("one pin for two chip lines")
    chip = _Chip(b, model, cs)
    b.chips.append(chip)
    cs.cs_of = chip
    cs.bus = b
    cs.driven = 1
    if r is not None:
        r.reset_of = model
        r.bus = b
        r.driven = 1
        r.apply()
    if p is not None:
        p.int_of = model
        p.irq_last = -1
    cs.apply()
    b.check_settings()
    return model


def spi_counters(spi_id):
    """Counters of bus spi_id: transactions, bytes, calls, wiring_errors, errors, baudrate,
    actual_baudrate."""
    return _bus(spi_id).counters()


def reset_spi_counters(spi_id):
    _bus(spi_id).reset_counters()


def reset_board():
    """Forget every pin, bus and wired chip (tests: a fresh board)."""
    _pins.clear()
    _buses.clear()
    _state["unique_id"] = None
    _state["freq"] = DEFAULT_CPU_HZ
    _state["reset_cause"] = PWRON_RESET
    _state["resets"] = 0
    _state["idle_calls"] = 0


# -- the rest of machine --------------------------------------------------------------------------
def set_unique_id(uid):
    _state["unique_id"] = bytes(uid)


def unique_id():
    """8 bytes, like the rp2 port's flash id; random per process unless set_unique_id() was used."""
    if _state["unique_id"] is None:
        _state["unique_id"] = bytes(os.urandom(8)) if os is not None else b"\x00" * 8
    return _state["unique_id"]


def reset_cause():
    return _state["reset_cause"]


def freq(hz=None):
    if hz is None:
        return _state["freq"]
    _state["freq"] = hz
    return None


def idle():
    """Runs pending (polled) pin interrupt handlers; returns at once."""
    _state["idle_calls"] += 1
    for pid in list(_pins):
        s = _pins[pid]
        if s.handler is not None:
            s.check_irq(s.level())


def lightsleep(ms=None):
    idle()


def reset():
    """A board would reboot: here the program ends (SystemExit)."""
    _state["resets"] += 1
    raise SystemExit("machine.reset()")


def soft_reset():
    _state["resets"] += 1
    raise SystemExit("machine.soft_reset()")


def disable_irq():
    return 0


def enable_irq(state=0):
    return None


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


# -- install -------------------------------------------------------------------------------------
def _this_module():
    return sys.modules[__name__]


def install():
    """Make `import machine` return this module (sys.modules["machine"]), on the unix port (whose
    own machine module has no SPI) and CPython alike. Returns the module."""
    mod = _this_module()
    prev = sys.modules.get("machine")
    if prev is not mod:
        _saved_machine.append(prev)
    sys.modules["machine"] = mod
    return mod


def uninstall():
    """Undo install(): `import machine` gives what it gave before."""
    mod = _this_module()
    if sys.modules.get("machine") is not mod:
        return
    prev = _saved_machine.pop() if _saved_machine else None
    if prev is None:
        del sys.modules["machine"]
    else:
        sys.modules["machine"] = prev
