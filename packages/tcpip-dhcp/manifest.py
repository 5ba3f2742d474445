metadata(description="tcpip DHCP client (RFC 2131): lease, renewal, INIT-REBOOT", version="0.1.0")

require("tcpip")

package("tcpip", files=("dhcp.py",), base_path="../../lib")
