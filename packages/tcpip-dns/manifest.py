metadata(description="tcpip DNS resolver for tcpip.socket.getaddrinfo", version="0.1.0")

require("tcpip")

package("tcpip", files=("dns.py",), base_path="../../lib")
