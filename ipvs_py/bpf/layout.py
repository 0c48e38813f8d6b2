"""Byte layouts of the session map key and value.

These must match ``struct ipvs_key`` / ``struct ipvs_val`` in
``progs/ipvs_fastpath.c``; :func:`check_mapdefs` compares them with the map
definitions compiled into the object, so drift fails at load time rather
than as silent misses.  The design follows the seed's
``bpf_lb_conn_key``/``bpf_lb_conn_value`` (TencentOS-kernel ip_vs_conn.c):
one entry per direction, each keyed by the tuple as it appears on the wire.
"""
import socket
import struct
from dataclasses import dataclass

import numpy as np

from .errors import ElfError

# family, proto, sport, dport (network order), pad, saddr[16], daddr[16]
KEY = struct.Struct("<BB2s2sH16s16s")
# addr[16], port (network order), fwd, flags, tcp_flags, packets, bytes, last_ns
VALUE = struct.Struct("<16s2sBBIQQQ")
# The same layouts as numpy records, to build many keys at once (the model
# feed turns a drained batch of conn events into keys without a Python loop).
KEY_DTYPE = np.dtype([("family", "u1"), ("proto", "u1"), ("sport", ">u2"),
                      ("dport", ">u2"), ("pad", "<u2"), ("saddr", "V16"),
                      ("daddr", "V16")])
VALUE_DTYPE = np.dtype([("addr", "V16"), ("port", ">u2"), ("fwd", "u1"),
                        ("flags", "u1"), ("tcp_flags", "<u4"),
                        ("packets", "<u8"), ("bytes", "<u8"),
                        ("last_ns", "<u8")])
assert (KEY_DTYPE.itemsize, VALUE_DTYPE.itemsize) == (KEY.size, VALUE.size)
STAT_NAMES = ("pass", "in", "out", "err")   # enum in ipvs_fastpath.c

FWD_MASQ = 0   # IP_VS_CONN_F_MASQ (include/uapi/linux/ip_vs.h)


def _addr16(addr):
    """4- or 16-byte packed address, padded to 16 as the key stores it."""
    return addr.ljust(16, b"\0")


def pack_key(family, proto, saddr, sport, daddr, dport):
    """Key for a packet ``saddr:sport -> daddr:dport`` (addresses packed)."""
    return KEY.pack(family, proto, sport.to_bytes(2, "big"),
                    dport.to_bytes(2, "big"), 0, _addr16(saddr), _addr16(daddr))


def pack_value(addr, port, fwd=FWD_MASQ):
    """Value rewriting to ``addr:port``; counters start at zero."""
    return VALUE.pack(_addr16(addr), port.to_bytes(2, "big"), fwd, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class SessionStats:
    """What the fast path recorded for one session direction."""
    addr: bytes
    port: int
    tcp_flags: int
    packets: int
    bytes: int
    last_ns: int


def unpack_value(raw, family=socket.AF_INET):
    addr, port, _fwd, _fl, tcp_flags, pkts, nbytes, last = VALUE.unpack(raw)
    alen = 4 if family == socket.AF_INET else 16
    return SessionStats(addr[:alen], int.from_bytes(port, "big"), tcp_flags,
                        pkts, nbytes, last)


def check_mapdefs(defs):
    """Raise ElfError unless the object's session maps use our layouts."""
    for name in ("sess_in", "sess_out"):
        d = defs.get(name)
        if d is None:
            raise ElfError(f"object has no map {name!r}")
        if (d.key_size, d.value_size) != (KEY.size, VALUE.size):
            raise ElfError(
                f"map {name!r}: object has key/value {d.key_size}/"
                f"{d.value_size} bytes, layout.py has {KEY.size}/{VALUE.size}")
