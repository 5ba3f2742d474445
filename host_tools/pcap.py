"""Classic libpcap files: PcapWriter, PcapReader, and PcapTap (records any device's frames).

Format (https://wiki.wireshark.org/Development/LibpcapFileFormat): a 24-byte global header
(magic 0xa1b2c3d4, version 2.4, thiszone 0, sigfigs 0, snaplen, linktype) then per packet a
16-byte record header (ts_sec, ts_usec, incl_len, orig_len) and incl_len bytes. We write
little-endian microsecond files; the reader also takes big-endian and nanosecond (0xa1b23c4d) ones.
"""
import struct
import time

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
VERSION_MAJOR = 2
VERSION_MINOR = 4
LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 65535
GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16


class PcapWriter:
    """PcapWriter(path_or_file, snaplen=65535, linktype=1, flush=True).

    A path is opened (and closed by close()); a file object is written to and left open.
    flush=True flushes after every packet so tcpdump/tshark can read a file still being written.
    """

    def __init__(self, path_or_file, snaplen=DEFAULT_SNAPLEN, linktype=LINKTYPE_ETHERNET, flush=True):
        if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
            self._file = open(path_or_file, "wb")
            self._owned = True
        else:
            self._file = path_or_file
            self._owned = False
        self.snaplen = snaplen
        self.linktype = linktype
        self._flush = flush
        self.packets = 0
        self._file.write(struct.pack("<IHHiIII", MAGIC_US, VERSION_MAJOR, VERSION_MINOR, 0, 0,
                                     snaplen, linktype))
        if flush:
            self._file.flush()

    def write(self, frame, timestamp=None):
        """Append one frame (any bytes-like); timestamp in seconds (float), default time.time()."""
        if timestamp is None:
            timestamp = time.time()
        sec = int(timestamp)
        usec = int(round((timestamp - sec) * 1000000))
        if usec >= 1000000:
            sec += 1
            usec -= 1000000
        data = memoryview(frame)
        orig_len = len(data)
        incl_len = min(orig_len, self.snaplen)
        self._file.write(struct.pack("<IIII", sec, usec, incl_len, orig_len))
        self._file.write(data[:incl_len])
        self.packets += 1
        if self._flush:
            self._file.flush()

    def flush(self):
        self._file.flush()

    def close(self):
        if self._file is None:
            return
        self._file.flush()
        if self._owned:
            self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_pcap(data, partial_ok=False):
    """Parse pcap bytes -> (linktype, snaplen, [(timestamp, frame_bytes)], bytes_consumed).

    partial_ok=True tolerates a truncated last record or a missing header (a file or pipe still
    being written): it is left out and bytes_consumed says how far the complete part reaches.
    Raises ValueError on a bad magic number, or on truncation when partial_ok is False.
    """
    data = bytes(data)
    if len(data) < GLOBAL_HEADER_LEN:
        if partial_ok:
            return None, None, [], 0
        raise ValueError("pcap: short global header (%d bytes)" % len(data))
    magic_le = struct.unpack_from("<I", data, 0)[0]
    if magic_le in (MAGIC_US, MAGIC_NS):
        endian = "<"
    else:
        magic_be = struct.unpack_from(">I", data, 0)[0]
        if magic_be not in (MAGIC_US, MAGIC_NS):
            raise ValueError("pcap: bad magic 0x%08x" % magic_le)
        endian = ">"
    magic, _vmaj, _vmin, _zone, _sig, snaplen, linktype = struct.unpack_from(endian + "IHHiIII", data, 0)
    divisor = 1e9 if magic == MAGIC_NS else 1e6
    packets = []
    off = GLOBAL_HEADER_LEN
    rec = endian + "IIII"
    while off < len(data):
        if off + RECORD_HEADER_LEN > len(data):
            if partial_ok:
                break
            raise ValueError("pcap: truncated record header at %d" % off)
        sec, frac, incl_len, _orig = struct.unpack_from(rec, data, off)
        end = off + RECORD_HEADER_LEN + incl_len
        if end > len(data):
            if partial_ok:
                break
            raise ValueError("pcap: truncated record at %d" % off)
        packets.append((sec + frac / divisor, data[off + RECORD_HEADER_LEN:end]))
        off = end
    return linktype, snaplen, packets, off


class PcapReader:
    """PcapReader(path_or_file_or_bytes): iterate (timestamp, frame_bytes); .linktype, .snaplen."""

    def __init__(self, source):
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif isinstance(source, str) or hasattr(source, "__fspath__"):
            with open(source, "rb") as f:
                data = f.read()
        else:
            data = source.read()
        self.linktype, self.snaplen, self.packets, _ = parse_pcap(data)

    def __iter__(self):
        return iter(self.packets)

    def __len__(self):
        return len(self.packets)


def read_pcap(source):
    """[(timestamp, frame_bytes), ...] from a path, file object or bytes."""
    return PcapReader(source).packets


class PcapTap:
    """PcapTap(device, writer): a device that records every frame received or sent through it.

    Implements the device contract (mac, mtu, recv_into, send, wait) by delegating to `device`;
    other attributes (fileno, close, counters) pass through too. Not for the MicroPython hot path:
    each recorded frame costs a write and a small allocation.
    """

    def __init__(self, device, writer):
        self.device = device
        self.writer = writer

    @property
    def mac(self):
        return self.device.mac

    @property
    def mtu(self):
        return self.device.mtu

    def recv_into(self, buf):
        n = self.device.recv_into(buf)
        if n:
            self.writer.write(memoryview(buf)[:n])
        return n

    def send(self, buf, n):
        self.writer.write(memoryview(buf)[:n])
        return self.device.send(buf, n)

    def wait(self, timeout_ms):
        wait = getattr(self.device, "wait", None)
        if wait is None:
            return True
        return wait(timeout_ms)

    def __getattr__(self, name):
        if name == "device":
            raise AttributeError(name)
        return getattr(self.device, name)
