"""Host-side tools for tcpip: TAP device, UDP frame bridge, pcap, Linux test namespaces.

CPython only (the MicroPython half of the frame bridge is in host_tools/mp/):
  tap.py     TapDevice: the NIC contract over a Linux TAP device
  bridge.py  FrameBridge / run_bridge: relays TAP frames as UDP datagrams (for the unix port)
  pcap.py    PcapWriter, PcapReader, PcapTap (records any device)
  netns.py   TestNamespace (netns + tap0 + Linux peer address), Tcpdump, sweep_stale_namespaces
  run.py     python -m host_tools run: an unmodified MicroPython script over the stack
             (host_tools/mp/run_main.py does the script's side, on both runtimes)
"""
