"""NIC drivers for SPI Ethernet chips (W5500, ENC28J60): the device contract of docs/ARCHITECTURE.md."""


def default_mac():
    """A locally administered unicast MAC (IEEE 802: U/L bit set, I/G bit clear): the board's
    machine.unique_id() folded into the last 5 bytes, so a board keeps its MAC across resets;
    random when there is no unique id."""
    m = bytearray(6)
    uid = None
    try:
        import machine
        uid = machine.unique_id()
    except Exception:  # no machine module (CPython) or no unique_id on this port
        uid = None
    if uid:
        for i in range(len(uid)):
            m[1 + i % 5] ^= uid[i]
    else:
        import os
        r = os.urandom(5)
        for i in range(5):
            m[1 + i] = r[i]
    m[0] = 0x02
    return bytes(m)
