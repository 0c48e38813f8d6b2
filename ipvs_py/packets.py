"""PacketBatch: packets as columns, the input of ``Netns.replay``.

A batch is a struct of numpy arrays, one element per packet, in the order
they are to be processed.  Addresses are 16 raw bytes in network order
(IPv4 in the first 4 bytes, the rest zero) because that is what the
kernel hashes: ``addr32`` in ARCHITECTURE.md is the raw network-order
word, i.e. ``int.from_bytes(addr[:4], "little")`` on x86-64.

Columns:

=============  ==========  ====================================================
name           dtype       meaning
=============  ==========  ====================================================
``proto``      uint8       IP protocol number: 6 TCP, 17 UDP, 132 SCTP
``af``         uint8       2 (AF_INET) or 10 (AF_INET6)
``saddr``      uint8[16]   source address (client for ``direction`` 0)
``sport``      uint16      source port, host order
``daddr``      uint8[16]   destination address (the VIP for ``direction`` 0)
``dport``      uint16      destination port, host order
``tcp_flags``  uint8       TCP flag bits (FIN 1, SYN 2, RST 4, PSH 8, ACK 16);
                           SCTP: chunk type of the first chunk (INIT = 1)
``time``       float64     seconds on the virtual clock, non-decreasing
``fwmark``     uint32      netfilter mark (fwmark services)
``length``     uint32      IP packet length in bytes (for byte counters)
``direction``  uint8       0 client->VIP ("in"), 1 real server->client ("out")
``icmp``       ICMP_DTYPE  optional: the ICMP part of ICMP/ICMPv6 rows (proto
                           1 or 58): type, code, inner header, flags
                           (ipvs_py.icmp; docs/conn.md "ICMP errors")
=============  ==========  ====================================================
"""
import dataclasses
import ipaddress

import numpy as np

AF_INET, AF_INET6 = 2, 10
IPPROTO = {"tcp": 6, "udp": 17, "sctp": 132}
PROTO_NAMES = {v: k for k, v in IPPROTO.items()}
TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10,
                 "U": 0x20, "E": 0x40, "C": 0x80}
SCTP_CHUNK = {"INIT": 1, "INIT_ACK": 2, "DATA": 0, "SACK": 3, "ABORT": 6,
              "SHUTDOWN": 7, "SHUTDOWN_ACK": 8, "COOKIE_ECHO": 10,
              "COOKIE_ACK": 11, "SHUTDOWN_COMPLETE": 14}

_SCALARS = {
    "proto": np.uint8, "af": np.uint8, "sport": np.uint16,
    "dport": np.uint16, "tcp_flags": np.uint8, "time": np.float64,
    "fwmark": np.uint32, "length": np.uint32, "direction": np.uint8,
}
_ADDRS = ("saddr", "daddr")
COLUMNS = ("proto", "af", "saddr", "sport", "daddr", "dport", "tcp_flags",
           "time", "fwmark", "length", "direction")
#: The optional ``icmp`` column, one record per row (zeros on other rows);
#: ports in host order as in sport/dport.  Layout read by conntab_icmp.pxi.
ICMP_DTYPE = np.dtype([("type", "u1"), ("code", "u1"), ("proto", "u1"),
                       ("flags", "u1"), ("sport", "<u2"), ("dport", "<u2"),
                       ("saddr", "u1", 16), ("daddr", "u1", 16),
                       # IPIP: the client's request inside the tunnel packet
                       ("tsport", "<u2"), ("tdport", "<u2"), ("tproto", "u1"),
                       # even size: the u2 fields of every record stay
                       # 2-byte aligned (UBSan checks the C reads)
                       ("pad", "u1"),
                       ("tsaddr", "u1", 16), ("tdaddr", "u1", 16)])
ICMP_PROTOS = {"icmp": 1, "icmpv6": 58}
_PROTO_TEXT = {**PROTO_NAMES, **{v: k for k, v in ICMP_PROTOS.items()}}


@dataclasses.dataclass(frozen=True)
class Packet:
    """One packet of a batch, with Python-friendly values."""

    proto: str
    saddr: str
    sport: int
    daddr: str
    dport: int
    tcp_flags: str
    time: float
    fwmark: int = 0
    length: int = 0
    direction: str = "in"
    icmp: object = None     # the ICMP_DTYPE record of an ICMP row


def parse_proto(value):
    """``"tcp"``/``"udp"``/``"sctp"`` or their numbers -> protocol number."""
    if isinstance(value, str):
        try:
            return IPPROTO[value.lower()]
        except KeyError:
            raise ValueError(f"unknown protocol {value!r} "
                             f"(expected one of {', '.join(IPPROTO)})") from None
    if isinstance(value, (int, np.integer)) and int(value) in PROTO_NAMES:
        return int(value)
    raise ValueError(f"unknown protocol {value!r} (expected one of "
                     f"{', '.join(IPPROTO)} or 6, 17, 132)")


def parse_tcp_flags(value):
    """``"S"``, ``"SA"``, ``"FA"``... or an int -> the TCP flag byte."""
    if isinstance(value, (int, np.integer)):
        if not 0 <= int(value) <= 255:
            raise ValueError(f"tcp_flags must be 0..255, got {value}")
        return int(value)
    if not isinstance(value, str):
        raise TypeError(f"tcp_flags must be a string like 'SA' or an int, "
                        f"not {type(value).__name__}")
    if value.upper() in SCTP_CHUNK:
        return SCTP_CHUNK[value.upper()]
    bits = 0
    for ch in value.upper():
        if ch not in TCP_FLAG_BITS:
            raise ValueError(f"unknown TCP flag {ch!r} in {value!r} "
                             f"(use letters of {''.join(TCP_FLAG_BITS)})")
        bits |= TCP_FLAG_BITS[ch]
    return bits


def flags_text(bits):
    """The TCP flag byte as letters in FSRPAUEC order ("" for none)."""
    return "".join(ch for ch, b in TCP_FLAG_BITS.items() if bits & b)


def parse_addr(value):
    """An address string/int/ip_address -> (af, 16 raw network-order bytes)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"bad IP address {value!r}") from None
    if ip.version == 4:
        return AF_INET, ip.packed + bytes(12)
    return AF_INET6, ip.packed


def parse_addr_pair(saddr, daddr):
    """Source and destination -> (af, raw saddr, raw daddr); ValueError
    when their families differ."""
    saf, sraw = parse_addr(saddr)
    daf, draw = parse_addr(daddr)
    if saf != daf:
        raise ValueError(f"address families differ: {saddr} -> {daddr}")
    return saf, sraw, draw


def addr_text(af, raw):
    """16 raw bytes -> the address string of family ``af``."""
    raw = bytes(raw)
    if af == AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw))


def _port(value, name):
    v = int(value)
    if not 0 <= v <= 65535:
        raise ValueError(f"{name} must be 0..65535, got {value}")
    return v


class PacketBatch:
    """Packets as numpy columns (see the module docstring for the columns).

    Build one with :meth:`from_rows` (tuples, convenient) or
    :meth:`from_columns` (arrays, fast); workload generators and the pcap
    reader return batches.  Batches are immutable by convention: methods
    return new batches.
    """

    __slots__ = ("_cols",)

    def __init__(self, columns):
        n = None
        cols = {}
        for name in COLUMNS:
            if name not in columns:
                raise ValueError(f"missing column {name!r}")
            arr = np.asarray(columns[name])
            if name in _ADDRS:
                if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != 16:
                    raise ValueError(f"{name} must be a uint8 array of shape "
                                     f"(n, 16), got {arr.dtype} {arr.shape}")
            else:
                arr = arr.astype(_SCALARS[name], copy=False)
                if arr.ndim != 1:
                    raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise ValueError(f"column {name} has {len(arr)} rows, "
                                 f"expected {n}")
            cols[name] = np.ascontiguousarray(arr)
        if columns.get("icmp") is not None:
            arr = np.asarray(columns["icmp"])
            if arr.dtype != ICMP_DTYPE or arr.shape != (n,):
                raise ValueError(f"icmp must be an array of {n} "
                                 f"packets.ICMP_DTYPE records, got "
                                 f"{arr.dtype} {arr.shape}")
            cols["icmp"] = np.ascontiguousarray(arr)
        extra = set(columns) - set(COLUMNS) - {"icmp"}
        if extra:
            raise ValueError(f"unknown columns: {', '.join(sorted(extra))}")
        self._cols = cols

    # ---------------------------------------------------------- building

    @classmethod
    def empty(cls, n=0):
        """A batch of ``n`` zeroed packets (to be filled column by column)."""
        cols = {name: np.zeros(n, dtype) for name, dtype in _SCALARS.items()}
        for name in _ADDRS:
            cols[name] = np.zeros((n, 16), np.uint8)
        cols["af"][:] = AF_INET
        return cls(cols)

    @classmethod
    def from_rows(cls, rows):
        """Rows of ``(proto, saddr, sport, daddr, dport, tcp_flags, time)``
        with optional trailing ``fwmark``, ``length``, ``direction``.

        ``proto`` is "tcp"/"udp"/"sctp" (or 6/17/132); addresses are strings;
        ``tcp_flags`` is like "S", "SA", "A", "FA" or an int (for SCTP, a
        chunk name such as "INIT"); ``direction`` is "in" or "out".  An
        ICMP row has proto "icmp"/"icmpv6" and an 11th field, an
        ipvs_py.icmp.IcmpError (its tcp_flags field is ignored).  A bad
        row raises ValueError naming its index and what was wrong.
        """
        from .icmp import IcmpError, icmp_proto
        rows = list(rows)
        b = cls.empty(len(rows))
        c = b._cols
        icmp = None
        for i, row in enumerate(rows):
            try:
                if not 7 <= len(row) <= 11:
                    raise ValueError(f"expected 7 to 11 fields, got {len(row)}")
                proto, saddr, sport, daddr, dport, flags, t, *rest = row
                saf, sraw, draw = parse_addr_pair(saddr, daddr)
                ip = icmp_proto(proto, saf)
                if ip is None:
                    c["proto"][i] = parse_proto(proto)
                    if len(rest) > 3:
                        raise ValueError("only ICMP rows have an 11th field")
                else:
                    c["proto"][i] = ip
                    if len(rest) < 4 or not isinstance(rest[3], IcmpError):
                        raise ValueError("an ICMP row needs an IcmpError "
                                         "as its 11th field")
                    if icmp is None:
                        icmp = np.zeros(len(rows), ICMP_DTYPE)
                    icmp[i] = rest[3].record(saf)
                    flags = 0
                c["af"][i] = saf
                c["saddr"][i] = np.frombuffer(sraw, np.uint8)
                c["daddr"][i] = np.frombuffer(draw, np.uint8)
                c["sport"][i] = _port(sport, "sport")
                c["dport"][i] = _port(dport, "dport")
                c["tcp_flags"][i] = parse_tcp_flags(flags)
                c["time"][i] = float(t)
                if rest:
                    c["fwmark"][i] = int(rest[0])
                if len(rest) > 1:
                    c["length"][i] = int(rest[1])
                if len(rest) > 2:
                    if rest[2] not in ("in", "out"):
                        raise ValueError(f"direction must be 'in' or 'out', "
                                         f"got {rest[2]!r}")
                    c["direction"][i] = rest[2] == "out"
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"row {i}: {exc}") from None
        if icmp is not None:
            c["icmp"] = icmp
        b._check_time()
        return b

    @classmethod
    def from_columns(cls, *, proto, saddr, sport, daddr, dport, time,
                     tcp_flags=0, af=None, fwmark=0, length=0, direction=0,
                     icmp=None):
        """Build from arrays.  Addresses are (n, 16) uint8 raw bytes, or
        (n, 4) uint8, or uint32 IPv4 addresses as host-order integers
        (``int(IPv4Address(...))``).  Scalars broadcast to every row.
        ``icmp``: an ICMP_DTYPE array for batches with ICMP rows (proto 1
        or 58)."""
        proto_arr = np.asarray(proto)
        n = len(proto_arr)

        def addrs(a, name):
            a = np.asarray(a)
            if a.ndim == 1 and a.dtype.kind in "ui":
                if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
                    raise ValueError(f"{name}: IPv4 integers must be 0..2**32-1")
                out = np.zeros((len(a), 16), np.uint8)
                out[:, :4] = a.astype(">u4").view(np.uint8).reshape(-1, 4)
                return out, AF_INET
            if a.ndim == 2 and a.dtype == np.uint8 and a.shape[1] in (4, 16):
                if a.shape[1] == 4:
                    out = np.zeros((len(a), 16), np.uint8)
                    out[:, :4] = a
                    return out, AF_INET
                return a, None
            raise ValueError(f"{name} must be uint32 IPv4 integers or uint8 "
                             f"raw bytes of shape (n, 4) or (n, 16)")

        s, saf = addrs(saddr, "saddr")
        d, daf = addrs(daddr, "daddr")
        if af is None:
            af = saf or daf
            if af is None:
                raise ValueError("af is required with 16-byte addresses")

        def full(v, dtype):
            v = np.asarray(v)
            return np.full(n, v, dtype) if v.ndim == 0 else v

        if proto_arr.dtype.kind in "US":
            proto_arr = np.array([parse_proto(p) for p in proto_arr], np.uint8)
        batch = cls({
            "proto": proto_arr, "af": full(af, np.uint8), "saddr": s,
            "sport": full(sport, np.uint16), "daddr": d,
            "dport": full(dport, np.uint16),
            "tcp_flags": full(tcp_flags, np.uint8), "time": full(time, np.float64),
            "fwmark": full(fwmark, np.uint32), "length": full(length, np.uint32),
            "direction": full(direction, np.uint8), "icmp": icmp})
        known = list(PROTO_NAMES) + (list(ICMP_PROTOS.values())
                                     if icmp is not None else [])
        bad = ~np.isin(batch._cols["proto"], known)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"row {i}: unknown protocol {batch._cols['proto'][i]}")
        batch._check_time()
        return batch

    def _check_time(self):
        t = self._cols["time"]
        if len(t) and not np.all(np.isfinite(t)):
            raise ValueError("time must be finite")
        if len(t) > 1 and np.any(np.diff(t) < 0):
            i = int(np.argmax(np.diff(t) < 0)) + 1
            raise ValueError(f"row {i}: time goes backwards "
                             f"({t[i - 1]} -> {t[i]}); sort the batch first")

    # ----------------------------------------------------------- access

    def __len__(self):
        return len(self._cols["proto"])

    def __getattr__(self, name):
        try:
            return self._cols[name]
        except KeyError:
            if name == "icmp":      # optional column, absent
                return None
            raise AttributeError(name) from None

    def columns(self):
        """A dict of the column arrays (views; do not modify)."""
        return dict(self._cols)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return PacketBatch({k: v[index] for k, v in self._cols.items()})
        c = self._cols
        i = int(index)
        af = int(c["af"][i])
        proto = int(c["proto"][i])
        flags = int(c["tcp_flags"][i])
        icmp = c["icmp"][i] if proto in (1, 58) and "icmp" in c else None
        return Packet(
            _PROTO_TEXT.get(proto, str(proto)), addr_text(af, c["saddr"][i]),
            int(c["sport"][i]), addr_text(af, c["daddr"][i]),
            int(c["dport"][i]), flags_text(flags) if proto == 6 else str(flags),
            float(c["time"][i]), int(c["fwmark"][i]), int(c["length"][i]),
            "out" if c["direction"][i] else "in", icmp)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        span = (f", t={self.time[0]:g}..{self.time[-1]:g}s" if len(self) else "")
        return f"<PacketBatch {len(self)} packets{span}>"

    def take(self, indices):
        """A new batch of the rows at ``indices`` (in that order)."""
        idx = np.asarray(indices)
        if idx.size == 0:           # [] is a float array to numpy
            idx = idx.astype(np.intp)
        return PacketBatch({k: v[idx] for k, v in self._cols.items()})

    @staticmethod
    def concat(batches, sort=True):
        """Join batches; with ``sort`` the result is stably ordered by time."""
        batches = list(batches)
        if not batches:
            return PacketBatch.empty(0)
        cols = {k: np.concatenate([b._cols[k] for b in batches]) for k in COLUMNS}
        if any(b.icmp is not None for b in batches):
            cols["icmp"] = np.concatenate([
                b.icmp if b.icmp is not None else np.zeros(len(b), ICMP_DTYPE)
                for b in batches])
        if sort:
            order = np.argsort(cols["time"], kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
        return PacketBatch(cols)

    def flow_ids(self):
        """A dense int id per distinct (proto, saddr, sport, daddr, dport)."""
        c = self._cols
        key = np.concatenate([
            c["proto"][:, None], c["saddr"], c["sport"].view(np.uint8).reshape(-1, 2),
            c["daddr"], c["dport"].view(np.uint8).reshape(-1, 2)], axis=1)
        _, ids = np.unique(key, axis=0, return_inverse=True)
        return ids.reshape(-1)
