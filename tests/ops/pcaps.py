"""Tiny pcap files for the explain/whatif CLI tests (dpkt)."""
import socket

import dpkt


def write_tcp_pcap(path, packets):
    """``packets``: (time, src, sport, dst, dport, dpkt TCP flags)."""
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        for ts, src, sport, dst, dport, flags in packets:
            tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=1,
                               off=5)
            ip = dpkt.ip.IP(src=socket.inet_aton(src),
                            dst=socket.inet_aton(dst), p=6, data=tcp, ttl=64)
            ip.len = 20 + len(bytes(tcp))
            w.writepkt(bytes(dpkt.ethernet.Ethernet(
                src=b"\2\0\0\0\0\1", dst=b"\2\0\0\0\0\2", data=ip)), ts=ts)
