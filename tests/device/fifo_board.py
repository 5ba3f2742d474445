# A test board for the virtual board's plumbing: the W5500-EVB-Pico's pins with the tiny FIFO chip
# of tests/device/fifo_chip.py, which the board names itself (DRIVER, MODEL: "module:Class").
BOARD = "FIFO test board"
CHIP = "fifo"
DRIVER = "fifo_chip:FifoDriver"
MODEL = "fifo_chip:FifoModel"
SPI_ID = 0
SCK = 18
MOSI = 19
MISO = 16
CS = 17
RST = 20
INT = 21
BAUDRATE = 24000000
