"""The pcap/pcapng reader: every kind of frame kept or counted."""
import socket
import struct

import dpkt
import numpy as np
import pytest

from ipvs_py.workload import read_pcap

MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def ip4(src, dst, l4, proto, frag_off=0, mf=False):
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst),
                    p=proto, data=l4, ttl=64)
    ip.mf = int(mf)
    ip.offset = frag_off * 8
    ip.len = 20 + len(bytes(l4))
    return ip


def tcp(sport, dport, flags):
    return dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=1, off=5)


def eth(payload, etype=dpkt.ethernet.ETH_TYPE_IP):
    return bytes(dpkt.ethernet.Ethernet(src=MAC_A, dst=MAC_B, type=etype,
                                        data=payload))


def vlan_eth(payload, vid=42):
    ip = bytes(payload)
    return (MAC_B + MAC_A + struct.pack(">HH", 0x8100, vid) +
            struct.pack(">H", 0x0800) + ip)


def frames():
    """(description, frame bytes, kept?) in capture order."""
    syn = ip4("198.18.0.1", "192.0.2.1", tcp(40000, 80, dpkt.tcp.TH_SYN), 6)
    udp = ip4("198.18.0.2", "192.0.2.1",
              dpkt.udp.UDP(sport=5353, dport=53, data=b"q"), 17)
    v6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                      dst=socket.inet_pton(socket.AF_INET6, "2001:db8::80"),
                      nxt=17, hlim=64,
                      data=dpkt.udp.UDP(sport=1000, dport=8080, data=b"x"))
    v6.plen = len(bytes(v6.data))
    # SCTP common header + one INIT chunk (type 1, length 20), by hand:
    # dpkt 1.9.8 cannot serialise a Chunk it did not parse.
    sctp = ip4("198.18.0.3", "192.0.2.1",
               struct.pack(">HHII", 3000, 3868, 0, 0) +
               struct.pack(">BBH", dpkt.sctp.INIT, 0, 20) + b"\0" * 16, 132)
    icmp = ip4("198.18.0.4", "192.0.2.1", dpkt.icmp.ICMP(type=8, data=b"ping"), 1)
    frag1 = ip4("198.18.0.5", "192.0.2.1", tcp(40001, 80, dpkt.tcp.TH_ACK), 6,
                mf=True)
    frag2 = ip4("198.18.0.5", "192.0.2.1", b"\0" * 24, 6, frag_off=3)
    arp = eth(b"\0" * 28, etype=dpkt.ethernet.ETH_TYPE_ARP)
    return [
        ("tcp syn", eth(syn), True),
        ("udp", eth(udp), True),
        ("vlan tcp", vlan_eth(syn), True),
        ("ipv6 udp", eth(v6, dpkt.ethernet.ETH_TYPE_IP6), True),
        ("sctp init", eth(sctp), True),
        ("icmp", eth(icmp), False),
        ("arp", arp, False),
        ("truncated", eth(syn)[:14 + 20 + 6], False),
        ("first fragment", eth(frag1), True),
        ("later fragment", eth(frag2), False),
    ]


@pytest.fixture
def capture(tmp_path):
    path = tmp_path / "mix.pcap"
    with open(path, "wb") as f:
        wr = dpkt.pcap.Writer(f)
        for i, (_, frame, _) in enumerate(frames()):
            wr.writepkt(frame, ts=1000.0 + i * 0.5)
    return path


def test_kept_rows_and_skip_counts(capture):
    batch, stats = read_pcap(capture)
    assert stats.frames == 10
    assert stats.packets == len(batch) == 6
    assert dict(stats.skipped) == {"other protocol": 1, "non-IP": 1,
                                   "truncated": 1, "fragment": 1}
    assert "skipped 4" in stats.summary()
    rows = list(batch)
    assert [r.proto for r in rows] == ["tcp", "udp", "tcp", "udp", "sctp", "tcp"]
    assert rows[0].saddr == "198.18.0.1" and rows[0].dport == 80
    assert rows[0].tcp_flags == "S"
    assert rows[2].saddr == "198.18.0.1"       # the VLAN tag was stripped
    assert rows[3].saddr == "2001:db8::1" and rows[3].dport == 8080
    assert rows[4].tcp_flags == "1"            # SCTP INIT chunk type
    assert rows[5].sport == 40001              # first fragment kept
    assert batch.time.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 4.0]


def test_pcapng_and_raw_linktype(tmp_path):
    ng = tmp_path / "a.pcapng"
    with open(ng, "wb") as f:
        wr = dpkt.pcapng.Writer(f)
        for i, (_, frame, _) in enumerate(frames()[:2]):
            wr.writepkt(frame, ts=10.0 + i)
    batch, stats = read_pcap(ng)
    assert len(batch) == 2 and stats.skipped_total == 0

    raw = tmp_path / "raw.pcap"
    syn = ip4("198.18.0.9", "192.0.2.1", tcp(1234, 443, dpkt.tcp.TH_SYN), 6)
    with open(raw, "wb") as f:
        wr = dpkt.pcap.Writer(f, linktype=101)      # LINKTYPE_RAW
        wr.writepkt(bytes(syn), ts=1.0)
        wr.writepkt(b"\x00\x01", ts=2.0)
    batch, stats = read_pcap(raw)
    assert len(batch) == 1 and batch[0].dport == 443
    assert stats.skipped["non-IP"] == 1


def test_vip_filter(capture):
    batch, stats = read_pcap(capture, vips=[("192.0.2.1", 80)])
    assert len(batch) == 3
    assert stats.skipped["not to a VIP"] == 3


def test_not_a_capture(tmp_path):
    p = tmp_path / "x.pcap"
    p.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not a pcap"):
        read_pcap(p)


def test_flows_of_a_capture_replay_in_time_order(tmp_path):
    path = tmp_path / "ooo.pcap"
    syn = ip4("198.18.0.1", "192.0.2.1", tcp(40000, 80, dpkt.tcp.TH_SYN), 6)
    with open(path, "wb") as f:
        wr = dpkt.pcap.Writer(f)
        wr.writepkt(eth(syn), ts=5.0)
        wr.writepkt(eth(syn), ts=4.0)     # out-of-order capture
    batch, _ = read_pcap(path)
    assert np.all(np.diff(batch.time) >= 0)
