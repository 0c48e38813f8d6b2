"""Frames test_pcap.py does not cover: IPv6 fragments, QinQ and tagged
non-IP frames, truncated IPv6, Linux cooked (SLL) and BSD loopback
captures; each kept or counted under its reason."""
import socket
import struct

import dpkt
import pytest

from ipvs_py.workload import read_pcap

MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
V6A = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
V6B = socket.inet_pton(socket.AF_INET6, "2001:db8::80")


def ip6(next_header, payload):
    hdr = struct.pack(">IHBB", 6 << 28, len(payload), next_header, 64)
    return hdr + V6A + V6B + payload


def frag6(offset_units, more, payload, nxt=17):
    """An IPv6 fragment header (RFC 8200 4.5) in front of ``payload``."""
    return ip6(44, struct.pack(">BBHI", nxt, 0, (offset_units << 3) | more,
                               0xBEEF) + payload)


def udp_bytes(sport, dport, data=b"12345678"):
    return bytes(dpkt.udp.UDP(sport=sport, dport=dport, data=data,
                              ulen=8 + len(data)))


def ip4_syn(src="198.18.0.1", sport=40000):
    tcp = dpkt.tcp.TCP(sport=sport, dport=80, flags=dpkt.tcp.TH_SYN, off=5)
    ip = dpkt.ip.IP(src=socket.inet_aton(src),
                    dst=socket.inet_aton("192.0.2.1"), p=6, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    return bytes(ip)


def ether(etype, payload, tags=()):
    """Ethernet with 802.1ad/802.1Q tags ``tags`` = ((tpid, vid), ...)."""
    out = MAC_B + MAC_A
    for tpid, vid in tags:
        out += struct.pack(">HH", tpid, vid)
    return out + struct.pack(">H", etype) + payload


def write(path, frames, linktype=1):
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=linktype)
        for i, fr in enumerate(frames):
            w.writepkt(fr, ts=100.0 + i)


def test_ipv6_fragments_first_kept_later_skipped(tmp_path):
    p = tmp_path / "v6frag.pcap"
    write(p, [
        ether(0x86DD, frag6(0, 1, udp_bytes(1000, 8080))),   # first: kept
        ether(0x86DD, frag6(3, 0, b"\0" * 16)),              # later: skip
        ether(0x86DD, ip6(17, udp_bytes(1001, 8080))),       # unfragmented
    ])
    batch, stats = read_pcap(p)
    assert dict(stats.skipped) == {"fragment": 1}
    assert [(r.saddr, r.sport, r.dport) for r in batch] == [
        ("2001:db8::1", 1000, 8080), ("2001:db8::1", 1001, 8080)]


def test_qinq_and_tagged_non_ip(tmp_path):
    p = tmp_path / "vlan.pcap"
    write(p, [
        ether(0x0800, ip4_syn(), tags=((0x88A8, 100), (0x8100, 42))),
        ether(0x0800, ip4_syn(sport=40001), tags=((0x8100, 7),)),
        ether(0x0806, b"\0" * 28, tags=((0x8100, 7),)),      # tagged ARP
    ])
    batch, stats = read_pcap(p)
    assert [r.sport for r in batch] == [40000, 40001]
    assert all(r.saddr == "198.18.0.1" and r.tcp_flags == "S" for r in batch)
    assert dict(stats.skipped) == {"non-IP": 1}
    assert stats.summary() == "3 frames: 2 packets, skipped 1 (non-IP 1)"


def test_truncated_ipv6_and_truncated_l4(tmp_path):
    p = tmp_path / "trunc.pcap"
    whole = ether(0x86DD, ip6(17, udp_bytes(1000, 53)))
    write(p, [whole[:14 + 20],                  # IPv6 header cut short
              whole[:14 + 40 + 4],              # UDP header cut short
              ether(0x0800, ip4_syn()[:20 + 10]),
              whole])
    batch, stats = read_pcap(p)
    assert len(batch) == 1 and batch[0].dport == 53
    assert dict(stats.skipped) == {"truncated": 3}


@pytest.mark.parametrize("linktype, head", [
    (113, struct.pack(">HHH8sH", 0, 1, 6, MAC_A + b"\0\0", 0x0800)),  # SLL
    (0, struct.pack("<I", socket.AF_INET)),                           # NULL
])
def test_cooked_and_loopback_captures(tmp_path, linktype, head):
    p = tmp_path / "lt.pcap"
    write(p, [head + ip4_syn(), head + ip4_syn(sport=40002)], linktype)
    batch, stats = read_pcap(p)
    assert [r.sport for r in batch] == [40000, 40002]
    assert stats.skipped_total == 0


def test_unknown_linktype_is_counted(tmp_path):
    p = tmp_path / "lt.pcap"
    write(p, [b"\0" * 40], linktype=147)        # LINKTYPE_USER0
    batch, stats = read_pcap(p)
    assert len(batch) == 0 and dict(stats.skipped) == {"linktype 147": 1}


def test_truncated_ip_behind_vlan_and_sll(tmp_path):
    p = tmp_path / "t.pcap"
    write(p, [ether(0x0800, ip4_syn()[:6], tags=((0x8100, 5),))])
    assert dict(read_pcap(p)[1].skipped) == {"truncated": 1}
    head = struct.pack(">HHH8sH", 0, 1, 6, MAC_A + b"\0\0", 0x0800)
    write(p, [head + ip4_syn()[:6], head + b"\0" * 20], linktype=113)
    # the second claims IPv4 but its header (all zero, IHL 0) cannot be
    # parsed either: both count as truncated, none as non-IP
    assert dict(read_pcap(p)[1].skipped) == {"truncated": 2}
