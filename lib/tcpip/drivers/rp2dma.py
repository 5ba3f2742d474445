"""SPI transfers by DMA on the RP2040, running while the CPU does other work.

machine.SPI waits for every transfer; at 24 MHz a full Ethernet frame keeps the CPU waiting for
~64,000 cycles, a quarter of what a segment costs. With SpiDma the W5500 driver reads the next
frame while the stack works on the last one, and writes a frame while the stack builds the next.
Two DMA channels are claimed through rp2.DMA (MicroPython >= 1.21): one feeds the SPI TX FIFO, one
empties the RX FIFO (RP2040 datasheet 2.5 DMA, 4.4 SPI: the PL022's DMA requests DREQ_SPIn_TX/RX
are enabled by the SDK's spi_init). Register writes are viper (a channel starts on its CTRL_TRIG
write); addresses above 2**30 are passed as arguments.

The engine contract (tests/host/spi_fake.py FakeDma is the host's stand-in):
  start_read(buf, n)         clock n bytes into buf[0:n], zeros out on MOSI (CS already low)
  start_write(buf, off, n)   clock buf[off:off+n] out on MOSI (CS already low)
  finish()                   wait until the transfer is over: the SPI idle, its RX FIFO empty
  on_write_done(fn)          fn() runs when a write ends (a soft IRQ: scheduled, between two
                             jumps of whatever runs), unless finish() came first
A buffer must not change until finish(); after it, machine.SPI calls work on the bus again.
"""
import micropython
import rp2
from micropython import const

_BUSY = const(0x1000000)  # CH_CTRL_TRIG.BUSY (RP2040 datasheet 2.5.7)
_SR_BSY = const(0x10)     # SSPSR.BSY: a frame is being shifted (datasheet 4.4.4)
_SR_RNE = const(0x04)     # SSPSR.RNE: the RX FIFO holds data


@micropython.viper
def _start(ch: int, rd: int, wr: int, n: int, ctrl: int):
    p = ptr32(ch)
    p[0] = rd   # READ_ADDR
    p[1] = wr   # WRITE_ADDR
    p[2] = n    # TRANS_COUNT
    p[3] = ctrl  # CTRL_TRIG: starts the channel


@micropython.viper
def _addr(buf) -> int:
    return int(ptr8(buf))


@micropython.viper
def _wait(ch: int, sr: int, dr: int, icr: int):
    """The channel idle, then the SPI: after a write the RX FIFO holds what MISO carried, and
    overflowed (SSPRIS.RORRIS): emptied and cleared, so the next transfer reads only its bytes."""
    while ptr32(ch)[3] & _BUSY:
        pass
    while ptr32(sr)[0] & _SR_BSY:
        pass
    while ptr32(sr)[0] & _SR_RNE:
        x = ptr32(dr)[0]  # noqa: F841 (read to discard)
    ptr32(icr)[0] = 1  # SSPICR.RORIC


class SpiDma:
    """SpiDma(spi_id): DMA on SPI0 or SPI1 (machine.SPI(spi_id) configures the block)."""

    def __init__(self, spi_id):
        if spi_id not in (0, 1):
            raise ValueError("spi_id must be 0 or 1")
        self._tx = rp2.DMA()
        self._rx = rp2.DMA()
        base = 0x4003C000 if spi_id == 0 else 0x40040000  # SPI0 / SPI1 (datasheet 2.2.2)
        self._dr = base + 0x08   # SSPDR
        self._sr = base + 0x0C   # SSPSR
        self._icr = base + 0x20  # SSPICR
        treq = 16 + 2 * spi_id   # DREQ_SPIn_TX; DREQ_SPIn_RX is the next one (datasheet 2.5.3.1)
        self._ctrl_w = self._tx.pack_ctrl(size=0, inc_read=True, inc_write=False, treq_sel=treq,
                                          irq_quiet=False)  # a write's end raises the IRQ
        self._ctrl_z = self._tx.pack_ctrl(size=0, inc_read=False, inc_write=False, treq_sel=treq)
        self._ctrl_r = self._rx.pack_ctrl(size=0, inc_read=False, inc_write=True, treq_sel=treq + 1)
        # DMA channel registers (2.5.7); (rp2.DMA.channel is in MicroPython's docs, not in the stubs)
        self._txch = 0x50000000 + 0x40 * self._tx.channel  # pyright: ignore[reportAttributeAccessIssue]
        self._rxch = 0x50000000 + 0x40 * self._rx.channel  # pyright: ignore[reportAttributeAccessIssue]
        self._zero = bytearray(4)
        self._zaddr = _addr(self._zero)
        self._last = self._txch  # the channel whose end finish() waits for

    def start_read(self, buf, n):
        dr = self._dr
        _start(self._rxch, dr, _addr(buf), n, self._ctrl_r)
        _start(self._txch, self._zaddr, dr, n, self._ctrl_z)
        self._last = self._rxch

    def start_write(self, buf, off, n):
        _start(self._txch, _addr(buf) + off, self._dr, n, self._ctrl_w)
        self._last = self._txch

    def finish(self):
        _wait(self._last, self._sr, self._dr, self._icr)

    def on_write_done(self, fn):
        def handler(dma):
            fn()

        self._tx.irq(handler)

    def close(self):
        self._tx.close()
        self._rx.close()
