metadata(
    description="tcpip REPL helpers: net.up(), net.status(), net.connect(), net.serve()",
    version="0.1.0",
)

require("tcpip-board")
require("tcpip-dns")  # net.connect() resolves names

# net.connect() runs the host CLI's connect session (connect_main.Session) and prints its timeline.
module("net.py", base_path="../../firmware")
module("connect_main.py", base_path="../../firmware")
