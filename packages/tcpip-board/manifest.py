metadata(
    description="tcpip bring-up from a board file (SPI, pins, chip, link, DHCP or static, DNS)",
    version="0.1.0",
)

require("tcpip")
require("tcpip-dhcp")  # bring_up() takes its address by DHCP unless given a static one

# tcpip.board opens the driver the board file's CHIP names (install tcpip-w5500 or
# tcpip-enc28j60) and uses tcpip.dns when it is installed (tcpip-dns).
package("tcpip", files=("board.py", "board_help.py", "board_init.py"), base_path="../../lib")

# The board files, imported by tcpip.board.load_board() as boards.<name>.
package("boards", base_path="../..")
