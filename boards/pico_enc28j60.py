# Raspberry Pi Pico + an ENC28J60 module on SPI0 (the common wiring; the chip tops out at 20 MHz).
BOARD = "Pico+ENC28J60"
CHIP = "enc28j60"
SPI_ID = 0
SCK = 18
MOSI = 19
MISO = 16
CS = 17
RST = 20
INT = 21
BAUDRATE = 16_000_000  # 48 MHz / 3: the fastest exact rp2 SPI clock within the ENC28J60's 20 MHz
