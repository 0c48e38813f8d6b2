"""Craft and parse Ethernet/IPv4/IPv6 + TCP/UDP frames (tests, bench, demo).

Independent of the program under test: checksums are computed from
scratch (RFC 1071 one's-complement sum), so a wrong incremental update in
the program shows up as a mismatch here.
"""
import ipaddress
import socket
import struct
from dataclasses import dataclass

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def csum(data):
    """Internet checksum of ``data`` (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def l4_segment(proto, src, dst, sport, dport, payload, flags=0x10,
               udp_zero_csum=False):
    """TCP (20-byte header) or UDP segment with a valid checksum."""
    if proto == TCP:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4,
                          flags, 65535, 0, 0)
        off = 16
    else:
        hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        off = 6
    seg = bytearray(hdr + payload)
    if not udp_zero_csum:
        c = csum(_pseudo(src, dst, proto, len(seg)) + bytes(seg))
        if proto == UDP and c == 0:
            c = 0xFFFF
        struct.pack_into("!H", seg, off, c)
    return bytes(seg)


def frame(proto, saddr, sport, daddr, dport, payload=b"hello", flags=0x10,
          udp_zero_csum=False, ip_options=b""):
    """Ethernet frame src -> dst; addresses as strings, v4 or v6."""
    s, d = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
    seg = l4_segment(proto, s.packed, d.packed, sport, dport, payload, flags,
                     udp_zero_csum)
    if s.version == 4:
        ihl = 5 + len(ip_options) // 4
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0,
                                   ihl * 4 + len(seg), 1, 0x4000, 64, proto, 0,
                                   s.packed, d.packed) + ip_options)
        struct.pack_into("!H", ip, 10, csum(bytes(ip)))
        eth = MAC_B + MAC_A + struct.pack("!H", ETH_P_IP)
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(seg), proto, 64,
                         s.packed, d.packed)
        eth = MAC_B + MAC_A + struct.pack("!H", ETH_P_IPV6)
    return eth + bytes(ip) + seg


@dataclass
class Parsed:
    """A parsed frame with checksum verdicts."""
    proto: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    payload: bytes
    ip_csum_ok: bool
    l4_csum_ok: bool
    l4_csum: int


def parse(data):
    """Parse a frame made by :func:`frame` (possibly rewritten) and verify
    its checksums from scratch."""
    (etype,) = struct.unpack_from("!H", data, 12)
    if etype == ETH_P_IP:
        ihl = (data[14] & 0x0F) * 4
        ip = data[14:14 + ihl]
        tot = struct.unpack_from("!H", ip, 2)[0]
        proto = ip[9]
        src, dst = ip[12:16], ip[16:20]
        seg = data[14 + ihl:14 + tot]
        ip_ok = csum(ip) == 0
    else:
        plen, proto = struct.unpack_from("!HB", data, 18)
        src, dst = data[22:38], data[38:54]
        seg = data[54:54 + plen]
        ip_ok = True   # IPv6 has no header checksum
    sport, dport = struct.unpack_from("!HH", seg)
    if proto == TCP:
        cs, payload = struct.unpack_from("!H", seg, 16)[0], seg[20:]
    else:
        cs, payload = struct.unpack_from("!H", seg, 6)[0], seg[8:]
    if proto == UDP and cs == 0 and len(src) == 4:
        l4_ok = True   # "no checksum" is legal for UDP over IPv4
    else:
        l4_ok = csum(_pseudo(src, dst, proto, len(seg)) + seg) == 0
    return Parsed(proto, str(ipaddress.ip_address(src)), sport,
                  str(ipaddress.ip_address(dst)), dport, payload, ip_ok,
                  l4_ok, cs)
