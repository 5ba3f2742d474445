"""Per-reason counters: plain integers, one attribute each, read in one call with snapshot()."""

NAMES = (
    # Ethernet
    "eth_rx", "eth_tx", "eth_drop_short", "eth_drop_not_for_us", "eth_drop_ethertype",
    "eth_drop_exception",
    # ARP
    "arp_rx", "arp_drop_malformed", "arp_drop_not_for_us", "arp_request_sent", "arp_reply_sent",
    "arp_resolved", "arp_resolve_failed", "arp_queue_overflow", "arp_cache_full",
    # IPv4
    "ip_rx", "ip_tx", "ip_drop_bad_version", "ip_drop_bad_header_len", "ip_drop_bad_total_len",
    "ip_drop_bad_checksum", "ip_drop_not_for_us", "ip_drop_fragment", "ip_drop_proto",
    "ip_drop_bad_source", "ip_tx_no_route",
    # ICMP
    "icmp_rx", "icmp_drop_short", "icmp_drop_bad_checksum", "icmp_echo_reply_sent",
    "icmp_drop_type", "icmp_unreach_delivered", "icmp_unreach_no_match",
    "icmp_unreach_ignored",
    # TCP
    "tcp_rx", "tcp_tx", "tcp_drop_short", "tcp_drop_bad_header_len", "tcp_drop_bad_checksum",
    "tcp_drop_bad_port", "tcp_no_socket_rst_sent", "tcp_no_socket_rst_dropped",
    "tcp_syn_sent", "tcp_syn_retransmit", "tcp_connect_timeout", "tcp_connect_refused",
    "tcp_established", "tcp_syn_sent_bad_ack_rst_sent", "tcp_syn_sent_bad_ack_dropped",
    "tcp_rst_blind_dropped", "tcp_syn_sent_no_syn_dropped",
    "tcp_simultaneous_open", "tcp_drop_out_of_window", "tcp_drop_out_of_order",
    "tcp_challenge_ack_sent", "tcp_ack_unsent_data", "tcp_rst_received", "tcp_rexmit",
    "tcp_data_timeout", "tcp_rx_bytes", "tcp_tx_bytes", "tcp_time_wait_reused",
    "tcp_drop_no_ack", "tcp_rx_buffer_full",
    "tcp_rto_expired", "tcp_dupack", "tcp_fast_retransmit", "tcp_ooo_queued",
    "tcp_persist_probe", "tcp_keepalive_probe", "tcp_keepalive_timeout", "tcp_fin_wait2_timeout",
    "tcp_abort_on_close", "tcp_abort_on_data", "tcp_ack_too_old", "tcp_ack_ratelimited",
    "tcp_tlp_probe", "tcp_window_update_resent",
    "tcp_limited_transmit",
    # UDP datagrams that came while no UDP layer existed (tcpip.udp counts the rest)
    "udp_rx", "udp_no_port",
)


class NamedCounters:
    """Plain integer attributes, one per name in the class's NAMES (and in what extend() added);
    snapshot() -> dict."""

    NAMES = ()

    def __init__(self):
        self._names = list(self.NAMES)
        for n in self._names:
            setattr(self, n, 0)

    def extend(self, names):
        """The counters of a layer made later (UDP, DHCP, DNS: each brings its own names), at 0."""
        for n in names:
            if n not in self._names:
                self._names.append(n)
                setattr(self, n, 0)

    def snapshot(self):
        """All counters as a dict (allocates: not for hot paths)."""
        out = {}
        for n in self._names:
            out[n] = getattr(self, n)
        return out

    def nonzero(self):
        out = {}
        for n in self._names:
            v = getattr(self, n)
            if v:
                out[n] = v
        return out


class Counters(NamedCounters):
    """The stack's counters (NAMES above)."""

    NAMES = NAMES
