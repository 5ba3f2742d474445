"""NIC drivers for SPI Ethernet chips (W5500, ENC28J60): the device contract of docs/ARCHITECTURE.md."""
