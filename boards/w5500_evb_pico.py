# WIZnet W5500-EVB-Pico: RP2040 + W5500 on SPI0 (WIZnet's W5500-EVB-Pico pinout; docs/BOARDS.md).
BOARD = "W5500-EVB-Pico"
CHIP = "w5500"
SPI_ID = 0
SCK = 18
MOSI = 19
MISO = 16
CS = 17
RST = 20
INT = 21
BAUDRATE = 24_000_000  # rp2 clocks SPI from 48 MHz: 24 MHz is exact, 20 MHz would run at 12
