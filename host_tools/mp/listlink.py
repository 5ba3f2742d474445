# A chip model's wire side as two lists (MicroPython-compatible): tests and bench_spi put frames
# arriving from the network in `inbox` and read what the chip transmitted from `sent`. The one
# list-backed link: the scripted harness's FakeDevice (tests/host/segment.py) and the fault-link
# tests' Wire extend it.


class ListLink:
    """The network side of a chip model: frames waiting to arrive (inbox), frames it sent (sent)."""

    def __init__(self):
        self.inbox = []
        self.sent = []

    def recv_into(self, buf):
        if not self.inbox:
            return 0
        f = self.inbox.pop(0)
        buf[:len(f)] = f
        return len(f)

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))
