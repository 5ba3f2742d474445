# Freeze tcpip into a custom MicroPython firmware: the components of packages/ (each with its own
# manifest.py, as in micropython-lib), required by name. Frozen bytecode runs from flash, so the
# ~100 KB the .mpy bundle takes from the heap stay free.
#
#   make firmware MPY_DIR=/path/to/micropython MPY_BOARD=RPI_PICO      (from this repository), or
#   make -C /path/to/micropython/ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=$PWD/firmware/manifest.py
#
# A board's own manifest can include this one (include("/path/to/tcpip/firmware/manifest.py"), or
# with chip="w5500" / chip="enc28j60" for one driver only), or name the components itself:
#   add_library("tcpip", "/path/to/tcpip/packages")
#   require("tcpip-net")        # and what it requires: tcpip-board, tcpip-dhcp, tcpip-dns, tcpip
#   require("tcpip-w5500")
# (require() searches add_library() folders from MicroPython 1.23 on.)
#
# boot.py, main.py and /tcpip_config.py still go onto the filesystem (MicroPython runs boot.py and
# main.py from there only): docs/BOARDS.md, "The bundle, its size, and a frozen firmware". Paths
# are relative to this file.
options.defaults(chip=None)  # None: both chip drivers
include("$(PORT_DIR)/boards/manifest.py")  # what the port freezes anyway (rp2: _boot, rp2, ...)
add_library("tcpip", "../packages")
require("tcpip-net")  # net.py, connect_main.py; tcpip-board (with boards/), tcpip-dhcp, tcpip-dns, tcpip
if options.chip not in (None, "w5500", "enc28j60"):
    raise ValueError("chip=%r: w5500, enc28j60 or None (both)" % (options.chip,))
if options.chip in (None, "w5500"):
    require("tcpip-w5500")
if options.chip in (None, "enc28j60"):
    require("tcpip-enc28j60")
