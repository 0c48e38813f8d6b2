"""Read pcap/pcapng captures into PacketBatches (dpkt does the parsing).

IPv4 and IPv6 TCP, UDP and SCTP packets become rows; everything else is
counted, by reason, in :class:`PcapStats`, so a user sees exactly what a
capture held that the model cannot replay.  Link types: Ethernet (with
802.1Q/802.1ad VLAN tags, which dpkt strips), raw IP, Linux cooked (SLL)
and BSD loopback (NULL).

Fragments: the kernel reassembles before IPVS sees a packet, so a first
fragment (offset 0, carrying the L4 header) stands for the whole packet
and later fragments are skipped as ``fragment``.
"""
import collections
import dataclasses
import ipaddress

import dpkt
import numpy as np

from ..packets import AF_INET, AF_INET6, IPPROTO, PacketBatch

# pcap LINKTYPE_* numbers (tcpdump.org/linktypes.html).
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW = 0, 1, 101
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6 = 113, 228, 229
LINKTYPE_LOOP = 108
# Some writers put the platform's DLT_RAW (12, or 14 on OpenBSD) in the
# header instead of LINKTYPE_RAW; both mean "raw IP".
_RAW_IP = {LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14}
_L4 = set(IPPROTO.values())


@dataclasses.dataclass
class PcapStats:
    """What a capture held: rows kept, frames skipped by reason."""

    frames: int = 0
    packets: int = 0
    skipped: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)

    @property
    def skipped_total(self):
        return sum(self.skipped.values())

    def summary(self):
        """One line: '1000 frames: 990 packets, skipped 10 (non-IP 6, ...)'."""
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        return (f"{self.frames} frames: {self.packets} packets, skipped "
                f"{self.skipped_total}" + (f" ({parts})" if parts else ""))


def _reader(f):
    head = f.read(4)
    f.seek(0)
    if head == b"\x0a\x0d\x0d\x0a":
        return dpkt.pcapng.Reader(f)
    if head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return dpkt.pcap.Reader(f)
    raise ValueError("not a pcap or pcapng file (unknown magic "
                     f"{head.hex() or 'empty file'})")


_ETH_IP = {dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_IP6}
_VLAN_TPIDS = {0x8100, 0x88A8, 0x9100}


def _inner_ethertype(buf):
    """The EtherType after any 802.1Q/802.1ad tags of an Ethernet frame."""
    off = 12
    while len(buf) >= off + 2:
        etype = int.from_bytes(buf[off:off + 2], "big")
        if etype not in _VLAN_TPIDS:
            return etype
        off += 4
    return None


def _ip_or_truncated(payload, ethertype):
    """dpkt leaves an IP payload it could not parse as bytes: an IP
    EtherType with bytes behind it is a truncated packet, not non-IP."""
    if isinstance(payload, bytes) and ethertype in _ETH_IP:
        return "truncated"
    return payload


def _network_layer(linktype, buf):
    """The IP packet of one frame, or a skip reason string."""
    if linktype == LINKTYPE_ETHERNET:
        eth = dpkt.ethernet.Ethernet(buf)
        return _ip_or_truncated(eth.data, _inner_ethertype(buf))
    if linktype in _RAW_IP:
        version = buf[0] >> 4 if buf else 0
        if version == 4:
            return dpkt.ip.IP(buf)
        if version == 6:
            return dpkt.ip6.IP6(buf)
        return "non-IP"
    if linktype == LINKTYPE_LINUX_SLL:
        sll = dpkt.sll.SLL(buf)
        return _ip_or_truncated(sll.data, sll.ethtype)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return dpkt.loopback.Loopback(buf).data
    return f"linktype {linktype}"


def _row(ip):
    """(af, proto, src16, sport, dst16, dport, flags, length) or a reason."""
    if isinstance(ip, dpkt.ip.IP):
        af, src, dst = AF_INET, ip.src + bytes(12), ip.dst + bytes(12)
        if ip.offset & dpkt.ip.IP_OFFMASK:
            return "fragment"
        proto, length, l4 = ip.p, ip.len, ip.data
    elif isinstance(ip, dpkt.ip6.IP6):
        af, src, dst = AF_INET6, ip.src, ip.dst
        proto, l4 = ip.nxt, ip.data
        length = ip.plen + 40
        if proto == 44 or 44 in getattr(ip, "extension_hdrs", {}):
            frag = ip.extension_hdrs.get(44)
            if frag is not None and getattr(frag, "frag_off", 0):
                return "fragment"
            proto = getattr(ip, "p", proto)
    else:
        return "non-IP"
    if proto not in _L4:
        return "other protocol"
    if isinstance(l4, bytes):        # dpkt could not parse the L4 header
        return "truncated"
    if proto == IPPROTO["tcp"]:
        flags = l4.flags
    elif proto == IPPROTO["sctp"]:
        flags = l4.chunks[0].type if getattr(l4, "chunks", None) else 0
    else:
        flags = 0
    return af, proto, src, l4.sport, dst, l4.dport, flags, length


def read_pcap(path, *, vips=None):
    """Read a pcap/pcapng file -> ``(PacketBatch, PcapStats)``.

    Times are seconds since the first frame.  With ``vips`` (an iterable of
    ``(address, port)``), only packets to one of them are kept (the rest are
    counted as ``not to a VIP``).
    """
    vip_set = None
    if vips is not None:
        vip_set = {(ipaddress.ip_address(a).packed.ljust(16, b"\0"), int(p))
                   for a, p in vips}
    stats = PcapStats()
    rows = []
    t0 = None
    with open(path, "rb") as f:
        reader = _reader(f)
        linktype = reader.datalink()
        for ts, buf in reader:
            stats.frames += 1
            if t0 is None:
                t0 = float(ts)
            try:
                ip = _network_layer(linktype, buf)
                row = ip if isinstance(ip, str) else _row(ip)
            except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, IndexError):
                row = "truncated"
            if isinstance(row, str):
                stats.skipped[row] += 1
                continue
            if vip_set is not None and (row[4], row[5]) not in vip_set:
                stats.skipped["not to a VIP"] += 1
                continue
            rows.append((float(ts) - t0, *row))
    stats.packets = len(rows)
    n = len(rows)
    batch = PacketBatch.empty(n)
    if n:
        cols = batch.columns()
        times, af, proto, src, sport, dst, dport, flags, length = zip(*rows)
        cols["time"][:] = times
        cols["af"][:] = af
        cols["proto"][:] = proto
        cols["saddr"][:] = np.frombuffer(b"".join(src), np.uint8).reshape(n, 16)
        cols["daddr"][:] = np.frombuffer(b"".join(dst), np.uint8).reshape(n, 16)
        cols["sport"][:] = sport
        cols["dport"][:] = dport
        cols["tcp_flags"][:] = flags
        cols["length"][:] = length
        if np.any(np.diff(cols["time"]) < 0):   # captures can be out of order
            batch = batch.take(np.argsort(cols["time"], kind="stable"))
    return batch, stats
