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
BAUDRATE = 16_000_000  # rp2 makes 12 MHz of it (48 MHz / 4: its SPI divisors are even); 24 MHz is over the chip's 20
FULL_DUPLEX = False  # the ENC28J60 cannot auto-negotiate: a switch port then runs half duplex
