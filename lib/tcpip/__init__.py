"""tcpip: a lean TCP/IP client stack for MicroPython boards and CPython hosts."""
__version__ = "0.1.0"
