"""The names of the stack's counters (tcpip.counters), in index order: loaded when counters are
shown or read by name, so a board that only counts keeps none of this text in its heap."""

# The stack's counters in index order (the _ETH_*, _ARP_*, _IP_*, _ICMP_*, _TCP_* and _UDP_*
# constants of stack, arp, tcp* and udp): Ethernet, ARP, IPv4, ICMP, TCP, UDP (udp_rx and
# udp_no_port count also the datagrams that came while no UDP layer existed), then the later
# additions (ARP eviction and locktime, TCP hardening, PMTU, passive open). tcp_rx_bytes and
# tcp_tx_bytes wrap once past 2**29 (512 MiB): on a 32-bit port an int from 2**30 on is a heap
# object, and counting into one would allocate at every segment.
NAMES = (
    "eth_rx eth_tx eth_drop_short eth_drop_not_for_us eth_drop_ethertype eth_drop_exception "
    "arp_rx arp_drop_malformed arp_drop_not_for_us arp_request_sent arp_reply_sent arp_resolved "
    "arp_resolve_failed arp_queue_overflow arp_cache_full "
    "ip_rx ip_tx ip_drop_bad_version ip_drop_bad_header_len ip_drop_bad_total_len "
    "ip_drop_bad_checksum ip_drop_not_for_us ip_drop_fragment ip_drop_proto ip_drop_bad_source "
    "ip_tx_no_route "
    "icmp_rx icmp_drop_short icmp_drop_bad_checksum icmp_echo_reply_sent icmp_drop_type "
    "icmp_unreach_delivered icmp_unreach_no_match icmp_unreach_ignored "
    "tcp_rx tcp_tx tcp_drop_short tcp_drop_bad_header_len tcp_drop_bad_checksum tcp_drop_bad_port "
    "tcp_no_socket_rst_sent tcp_no_socket_rst_dropped tcp_syn_sent tcp_syn_retransmit "
    "tcp_connect_timeout tcp_connect_refused tcp_established tcp_syn_sent_bad_ack_rst_sent "
    "tcp_syn_sent_bad_ack_dropped tcp_rst_blind_dropped tcp_syn_sent_no_syn_dropped "
    "tcp_simultaneous_open tcp_drop_out_of_window tcp_drop_out_of_order tcp_challenge_ack_sent "
    "tcp_ack_unsent_data tcp_rst_received tcp_rexmit tcp_data_timeout tcp_rx_bytes tcp_tx_bytes "
    "tcp_time_wait_reused tcp_drop_no_ack tcp_rx_buffer_full tcp_rto_expired tcp_dupack "
    "tcp_fast_retransmit tcp_ooo_queued tcp_persist_probe tcp_keepalive_probe "
    "tcp_keepalive_timeout tcp_fin_wait2_timeout tcp_abort_on_close tcp_abort_on_data "
    "tcp_ack_too_old tcp_ack_ratelimited tcp_tlp_probe tcp_window_update_resent "
    "tcp_limited_transmit "
    "udp_rx udp_no_port udp_tx udp_drop_short udp_drop_bad_length udp_drop_bad_checksum "
    "udp_port_unreach_sent udp_port_unreach_ratelimited udp_icmp_error "
    "arp_evicted arp_update_locked tcp_drop_not_unicast tcp_ooo_purged tcp_tw_overflow "
    "tcp_conn_limit tcp_pmtu_reduced tcp_pmtu_ignored "
    "tcp_passive_open tcp_synack_retransmit tcp_synack_timeout tcp_listen_overflow "
    "tcp_syncookies_sent tcp_syncookies_ok tcp_syncookies_failed tcp_listen_rst_sent "
    "link_down link_up"
)
