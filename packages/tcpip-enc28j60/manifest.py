metadata(description="tcpip driver: Microchip ENC28J60", version="0.1.0")

require("tcpip")

package("tcpip", files=("drivers/enc28j60.py",), base_path="../../lib")
