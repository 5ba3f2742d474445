"""SPI/Pin fakes binding a driver to a chip model in tests (MicroPython and CPython).

FakeSpi(model) looks like machine.SPI (write, readinto, write_readinto); FakeCs(model) and
FakeResetPin(model) look like machine.Pin outputs (value(v), pin(v), on(), off()). FakeCs calls
model.select() on a high->low edge and model.deselect() on a low->high edge; FakeResetPin passes
the level to model.reset_pin(level). The model side is the chip-model contract of
docs/ARCHITECTURE.md: select(), deselect(), xfer(wbuf, rbuf, n), reset_pin(level), int_level().
The pins' on()/off()/pin(v)/high()/low() are machine_shim.PinCalls (host_tools/mp on the path).
"""
from machine_shim import PinCalls


class FakeSpi:
    def __init__(self, model):
        self.model = model
        self.calls = 0  # write/readinto/write_readinto calls (bus-level bursts)

    def init(self, *args, **kwargs):
        pass

    def deinit(self):
        pass

    def write(self, buf):
        self.calls += 1
        n = len(buf)
        self.model.xfer(buf, None, n)

    def readinto(self, buf, write=0):
        self.calls += 1
        n = len(buf)
        if write & 0xFF:
            # A fill byte other than the idle 0x00: tests only, so allocating here is fine.
            self.model.xfer(bytes([write & 0xFF]) * n, buf, n)
        else:
            self.model.xfer(None, buf, n)

    def write_readinto(self, wbuf, rbuf):
        self.calls += 1
        n = len(wbuf)
        if len(rbuf) != n:
            raise ValueError("buffers must be the same length")
        self.model.xfer(wbuf, rbuf, n)

    def read(self, n, write=0):
        buf = bytearray(n)
        self.readinto(buf, write)
        return buf


class _FakePin(PinCalls):
    def __init__(self, model, level=1):
        self.model = model
        self._level = level

    def init(self, *args, **kwargs):
        pass

    def _set(self, v):
        pass

    def value(self, v=None):
        if v is None:
            return self._level
        v = 1 if v else 0
        self._set(v)
        self._level = v
        return None


class FakeCs(_FakePin):
    """Chip select (active low, idle high): edges start and end SPI transactions on the model."""

    def __init__(self, model):
        _FakePin.__init__(self, model, 1)
        self.selects = 0

    def _set(self, v):
        if v == self._level:
            return
        if v == 0:
            self.selects += 1
            self.model.select()
        else:
            self.model.deselect()


class FakeResetPin(_FakePin):
    """Hardware reset line (active low, idle high), passed through to model.reset_pin(level)."""

    def __init__(self, model):
        _FakePin.__init__(self, model, 1)

    def _set(self, v):
        self.model.reset_pin(v)


class FakeIntPin(_FakePin):
    """Interrupt input: value() reads the model's INTn level (0 = asserted)."""

    def value(self, v=None):
        if v is None:
            return self.model.int_level()
        return None


class FakeDma:
    """The DMA engine contract of lib/tcpip/drivers/rp2dma.py over a FakeSpi: start_read /
    start_write note the transfer, finish() clocks its bytes through the SPI (CS still low, as
    the real engine has moved them by then); complete() is the transfer ending by itself, with
    the write callback. Counts the transfers it ran."""

    def __init__(self, spi):
        self.spi = spi
        self.job = None
        self.reads = 0
        self.writes = 0
        self.done_fn = None

    def on_write_done(self, fn):
        self.done_fn = fn

    def complete(self):
        """The running transfer ends by itself (what the IRQ reports): a write's callback runs."""
        job = self.job
        self.finish()
        if job is not None and not job[0] and self.done_fn is not None:
            self.done_fn()

    def start_read(self, buf, n):
        assert self.job is None, "a transfer is still running"
        self.job = (True, buf, 0, n)

    def start_write(self, buf, off, n):
        assert self.job is None, "a transfer is still running"
        self.job = (False, buf, off, n)

    def finish(self):
        job = self.job
        if job is None:
            return
        self.job = None
        read, buf, off, n = job
        view = memoryview(buf)[off:off + n]
        if read:
            self.reads += 1
            self.spi.readinto(view)
        else:
            self.writes += 1
            self.spi.write(view)
