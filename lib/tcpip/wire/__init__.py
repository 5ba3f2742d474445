"""Wire formats: one module per header, holding only what the stack uses ((buf, off) views):
ipv4, tcp, udp (Ethernet's and ARP's few views live in tcpip.arp, their only user).

Accessors never check lengths: callers validate once at the boundary (ipv4.check). The other
accessors, the offset constants and the Repr classes (parse/emit of whole headers) are test-side:
tests/host/wirerep/, one module per header re-exporting the lib one, so nothing test-only takes
heap on a board.
"""
