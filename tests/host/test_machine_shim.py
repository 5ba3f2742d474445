# dual: cpython micropython
# host_tools/mp/machine_shim.py: Pin and SPI semantics, CS framing of model.xfer calls, the bus
# counters, wiring errors, rp2 bus checks, install()/uninstall().
import sys

try:
    _ROOT = __file__.rsplit("/tests/host/", 1)[0] if "/tests/host/" in __file__ else "."
except NameError:  # pragma: no cover
    _ROOT = "."
_MP = _ROOT + "/host_tools/mp"
if _MP not in sys.path:
    sys.path.append(_MP)

import machine_shim  # noqa: E402
from machine_shim import Pin, SPI  # noqa: E402


class Recorder:
    """A chip model that logs every call; xfer answers with a counter so reads are checkable."""

    def __init__(self, modes=None, max_hz=None):
        self.log = []
        self.out = 0
        self.int = 1
        if modes is not None:
            self.spi_modes = modes
        if max_hz is not None:
            self.spi_max_hz = max_hz

    def select(self):
        self.log.append("select")

    def deselect(self):
        self.log.append("deselect")

    def xfer(self, wbuf, rbuf, n):
        self.log.append(("xfer", None if wbuf is None else bytes(wbuf[0:n]), rbuf is not None, n))
        if rbuf is not None:
            for i in range(n):
                rbuf[i] = (self.out + i) & 0xFF
            self.out += n

    def reset_pin(self, level):
        self.log.append(("reset", level))

    def int_level(self):
        return self.int


class Quiet:
    """A model that allocates nothing (for the no-allocation check)."""

    def __init__(self):
        self.n = 0

    def select(self):
        pass

    def deselect(self):
        pass

    def xfer(self, wbuf, rbuf, n):
        self.n += n

    def reset_pin(self, level):
        pass

    def int_level(self):
        return 1


def fresh(model=None, rst=20, irq=21):
    machine_shim.reset_board()
    m = model if model is not None else Recorder()
    machine_shim.wire(0, 17, m, reset_pin=rst, int_pin=irq)
    spi = SPI(0, baudrate=24000000, sck=Pin(18), mosi=Pin(19), miso=Pin(16))
    cs = Pin(17, Pin.OUT, value=1)
    return m, spi, cs


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


# -- Pin --------------------------------------------------------------------------------------------
def test_pin_constants_are_the_rp2_ones():
    assert (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN, Pin.ALT) == (0, 1, 2, 3)
    assert (Pin.PULL_UP, Pin.PULL_DOWN, Pin.IRQ_FALLING, Pin.IRQ_RISING) == (1, 2, 4, 8)


def test_pin_output_value_on_off_call_toggle():
    machine_shim.reset_board()
    p = Pin(5, Pin.OUT)
    assert p.value() == 0
    p.on()
    assert p.value() == 1 and p() == 1
    p.off()
    assert p.value() == 0
    p(1)
    assert p.value() == 1
    p.value(0)
    assert p.value() == 0
    p.toggle()
    assert p.value() == 1
    p.low()
    assert p.value() == 0
    p.high()
    assert p.value() == 1
    assert p.mode() == Pin.OUT


def test_pin_with_the_same_id_is_the_same_board_pin():
    machine_shim.reset_board()
    a = Pin(7, Pin.OUT, value=1)
    b = Pin(7)  # no mode: keeps the pin's configuration
    assert b.mode() == Pin.OUT and b.value() == 1
    b.value(0)
    assert a.value() == 0


def test_input_pin_reads_its_pull():
    machine_shim.reset_board()
    assert Pin(3, Pin.IN, Pin.PULL_UP).value() == 1
    assert Pin(4, Pin.IN, Pin.PULL_DOWN).value() == 0
    assert Pin(4).pull() == Pin.PULL_DOWN
    p = Pin(6, Pin.IN)
    p.value(1)  # latched, not driven
    assert p.value() == 0
    p.init(Pin.OUT)
    assert p.value() == 1


def test_bad_pin_mode_raises():
    machine_shim.reset_board()
    assert raises(ValueError, Pin, 1, 9)


# -- SPI configuration --------------------------------------------------------------------------------
def test_rp2_spi_clock_comes_from_48_mhz():
    f = machine_shim.rp2_spi_baudrate
    assert f(24000000) == 24000000
    assert f(20000000) == 12000000  # rp2: 48 MHz / even prescaler, 20 MHz really runs at 12
    assert f(16000000) == 12000000  # an even prescaler: 48/3 is not reachable
    assert f(12000000) == 12000000
    assert f(10000000) == 8000000
    assert f(1000000) == 1000000
    assert f(80000000) == 24000000
    assert f(100000) == 100000 and f(3000000) == 3000000
    assert f(400) == 48000000 // (254 * 256)  # below the slowest clock: the slowest clock
    machine_shim.reset_board()
    spi = SPI(0, baudrate=20000000, sck=18, mosi=19, miso=16)
    c = spi.counters()
    assert c["baudrate"] == 20000000 and c["actual_baudrate"] == 12000000
    assert "baudrate=12000000" in repr(spi)


def test_spi_pins_must_be_rp2040_spi_functions():
    machine_shim.reset_board()
    assert raises(ValueError, SPI, 0, 1000000, 0, 0, 8, 0, 10)         # SCK 10 is SPI1's
    assert raises(ValueError, SPI, 1, 1000000, 0, 0, 8, 0, 10, 11, 16)  # MISO 16 is SPI0's
    assert raises(ValueError, SPI, 2)
    SPI(1, sck=Pin(10), mosi=Pin(11), miso=Pin(12))
    s = SPI(0, sck=18, mosi=19, miso=16)
    assert "sck=18, mosi=19, miso=16" in repr(s)


def test_softspi_is_accepted():
    assert machine_shim.SoftSPI is SPI


# -- CS framing and transfers ------------------------------------------------------------------------
def test_cs_edges_frame_transactions_and_transfers_reach_the_model():
    m, spi, cs = fresh()
    assert m.log == []  # CS configured high: nothing selected
    cs(0)
    spi.write(b"\x00\x39\x01")
    rb = bytearray(2)
    spi.readinto(rb)
    cs(1)
    assert m.log == ["select", ("xfer", b"\x00\x39\x01", False, 3), ("xfer", None, True, 2), "deselect"]
    assert bytes(rb) == b"\x00\x01"
    c = machine_shim.spi_counters(0)
    assert (c["transactions"], c["bytes"], c["calls"], c["wiring_errors"]) == (1, 5, 2, 0)


def test_write_readinto_read_and_fill_byte():
    m, spi, cs = fresh()
    cs.value(0)
    w = bytearray(b"\x01\x02\x03")
    r = bytearray(3)
    spi.write_readinto(w, r)
    got = spi.read(2, 0xFF)
    rb = bytearray(4)
    spi.readinto(memoryview(rb)[1:3], 0xA5)
    cs.value(1)
    assert m.log[1] == ("xfer", b"\x01\x02\x03", True, 3)
    assert m.log[2] == ("xfer", b"\xff\xff", True, 2)
    assert m.log[3] == ("xfer", b"\xa5\xa5", True, 2)
    assert bytes(r) == b"\x00\x01\x02" and got == b"\x03\x04" and bytes(rb) == b"\x00\x05\x06\x00"
    assert raises(ValueError, spi.write_readinto, b"\x00\x00", bytearray(1))


def test_repeated_cs_writes_make_no_extra_edges():
    m, spi, cs = fresh()
    cs(1)
    cs(0)
    cs(0)
    cs(1)
    cs(1)
    assert m.log == ["select", "deselect"]
    assert machine_shim.spi_counters(0)["transactions"] == 1


def test_counters_add_up_over_transactions_and_reset():
    m, spi, cs = fresh()
    buf = bytearray(10)
    for _ in range(5):
        cs(0)
        spi.write(b"\x00\x00\x00")
        spi.readinto(buf)
        cs(1)
    c = machine_shim.spi_counters(0)
    assert (c["transactions"], c["bytes"], c["calls"]) == (5, 65, 10)
    machine_shim.reset_spi_counters(0)
    c = machine_shim.spi_counters(0)
    assert (c["transactions"], c["bytes"], c["calls"], c["wiring_errors"]) == (0, 0, 0, 0)


def test_transfer_with_cs_high_is_a_wiring_error():
    m, spi, cs = fresh()
    rb = bytearray(3)
    spi.write(b"\x01")
    spi.readinto(rb)
    assert m.log == []  # nothing reached the chip
    assert bytes(rb) == b"\xff\xff\xff"  # MISO floats high
    c = machine_shim.spi_counters(0)
    assert c["wiring_errors"] == 2 and c["errors"] == {"SPI transfer with no chip selected": 2}
    assert c["transactions"] == 0


def test_unconfigured_cs_pin_written_is_a_wiring_error():
    machine_shim.reset_board()
    m = Recorder()
    machine_shim.wire(0, 17, m)
    SPI(0, sck=18, mosi=19, miso=16)
    cs = Pin(17)  # never made an output
    cs.value(0)
    assert m.log == []
    assert machine_shim.spi_counters(0)["wiring_errors"] == 1
    cs.init(Pin.OUT)  # now the latched 0 drives the line
    assert m.log == ["select"]


def test_two_chips_on_one_bus_and_contention():
    machine_shim.reset_board()
    a = Recorder()
    b = Recorder()
    machine_shim.wire(0, 17, a)
    machine_shim.wire(0, 5, b)
    spi = SPI(0, sck=18, mosi=19, miso=16)
    ca = Pin(17, Pin.OUT, value=1)
    cb = Pin(5, Pin.OUT, value=1)
    cb(0)
    spi.write(b"\x07")
    cb(1)
    assert a.log == [] and b.log == ["select", ("xfer", b"\x07", False, 1), "deselect"]
    ca(0)
    cb(0)
    spi.write(b"\x08")
    cb(1)
    spi.write(b"\x09")
    ca(1)
    assert a.log == ["select", ("xfer", b"\x09", False, 1), "deselect"]
    c = machine_shim.spi_counters(0)
    assert c["errors"] == {"two chip selects low at once": 1, "SPI transfer with two chips selected": 1}
    assert c["transactions"] == 3


def test_mode_and_clock_the_chip_cannot_take_are_wiring_errors():
    machine_shim.reset_board()
    m = Recorder(modes=((0, 0), (1, 1)), max_hz=20000000)
    machine_shim.wire(0, 17, m)
    cs = Pin(17, Pin.OUT, value=1)
    spi = SPI(0, baudrate=24000000, sck=18, mosi=19, miso=16)  # 24 MHz > 20 MHz
    cs(0)
    spi.write(b"\x01")
    spi.init(baudrate=20000000)  # really 12 MHz: fine
    spi.write(b"\x02")
    spi.init(polarity=1, phase=0)
    spi.write(b"\x03")
    spi.init(polarity=1, phase=1)
    spi.write(b"\x04")
    spi.deinit()
    spi.write(b"\x05")
    cs(1)
    assert [e[1] for e in m.log if e[0] == "xfer"] == [b"\x02", b"\x04"]
    c = machine_shim.spi_counters(0)
    assert c["wiring_errors"] == 3
    assert c["errors"] == {"SPI clock 24000000 Hz above the chip's 20000000 Hz": 1,
                           "SPI mode polarity=1 phase=0 not supported by the chip": 1,
                           "SPI transfer on a deinit()ed bus": 1}


def test_spi_calls_allocate_nothing():
    if sys.implementation.name != "micropython":
        return  # CPython allocates for every call; the claim is about the unix port / a board
    import micropython

    m, spi, cs = fresh(Quiet())
    hdr = bytearray(3)
    buf = bytearray(64)
    mv = memoryview(buf)
    head = mv[0:3]
    wr = cs.value
    micropython.heap_lock()
    try:
        for _ in range(20):
            wr(0)
            spi.write(hdr)
            spi.readinto(mv)
            spi.write_readinto(hdr, head)
            wr(1)
    finally:
        micropython.heap_unlock()
    assert m.n == 20 * 70


# -- reset and INT ------------------------------------------------------------------------------------
def test_reset_pin_reaches_the_model_on_level_changes():
    m, spi, cs = fresh()
    rst = Pin(20, Pin.OUT, value=1)
    rst(1)
    assert m.log == []
    rst(0)
    rst(0)
    rst(1)
    assert m.log == [("reset", 0), ("reset", 1)]


def test_reset_line_low_when_wired_reaches_the_model():
    machine_shim.reset_board()
    Pin(20, Pin.OUT, value=0)
    m = Recorder()
    machine_shim.wire(0, 17, m, reset_pin=20)
    assert m.log == [("reset", 0)]


def test_int_pin_reads_the_model_and_polled_irq_fires():
    m, spi, cs = fresh()
    p = Pin(21, Pin.IN, Pin.PULL_UP)
    assert p.value() == 1
    seen = []
    p.irq(lambda pin: seen.append(pin.value()), Pin.IRQ_FALLING)
    m.int = 0
    assert p.value() == 0
    assert seen == [0]
    m.int = 1
    machine_shim.idle()
    m.int = 0
    machine_shim.idle()
    assert seen == [0, 0]


def test_a_pin_wired_twice_is_refused():
    machine_shim.reset_board()
    machine_shim.wire(0, 17, Recorder(), reset_pin=20)
    assert raises(machine_shim.WiringError, machine_shim.wire, 0, 20, Recorder())
    assert raises(machine_shim.WiringError, machine_shim.wire, 1, 9, Recorder(), 9)


# -- the rest of machine ------------------------------------------------------------------------------
def test_unique_id_reset_cause_freq_idle_reset():
    machine_shim.reset_board()
    uid = machine_shim.unique_id()
    assert len(uid) == 8 and machine_shim.unique_id() == uid
    machine_shim.set_unique_id(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert machine_shim.unique_id() == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    assert machine_shim.reset_cause() == machine_shim.PWRON_RESET
    assert machine_shim.freq() == 125000000
    machine_shim.freq(133000000)
    assert machine_shim.freq() == 133000000
    machine_shim.idle()
    assert raises(SystemExit, machine_shim.reset)
    machine_shim.WDT(timeout=1000).feed()


def test_install_makes_import_machine_the_shim_and_uninstall_undoes_it():
    before = sys.modules.get("machine")
    machine_shim.install()
    try:
        import machine

        assert machine is machine_shim
        assert machine.SPI is SPI and machine.Pin is Pin
        machine_shim.install()  # twice is harmless
        import machine as again

        assert again is machine_shim
    finally:
        machine_shim.uninstall()
        machine_shim.uninstall()
    assert sys.modules.get("machine") is before
    try:
        import machine as after
    except ImportError:
        after = None  # CPython has no machine module
    assert after is not machine_shim and getattr(after, "SPI", None) is not SPI
