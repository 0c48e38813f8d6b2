"""Reference for ``nlattr.pyx``: netlink attribute decoding in plain Python.

The compiled module must return exactly what these functions return (or
raise the same exception type) for every input; tests/core/test_nlattr.py
checks it with hypothesis.  Layout facts: an attribute is a ``struct
nlattr`` header (u16 length including the header, u16 type whose top two
bits are the NESTED/BYTEORDER flags) and its payload, padded to 4 bytes
(include/uapi/linux/netlink.h).
"""
import socket
import struct

#: How an attribute's payload decodes (the ``code`` of a table entry).
U8, U16, BE16, U32, ADDR, FLAGS, STR, STATS32, STATS64 = range(1, 10)

_SIZE = {U8: 1, U16: 2, BE16: 2, U32: 4, FLAGS: 8}
_FMT = {U8: "=B", U16: "=H", BE16: ">H", U32: "=I"}
_HDR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
_FLAGS = struct.Struct("=II")
AF_INET6 = 10


def _attrs(payload, start, end):
    """(type, payload start, payload end) of each attribute in [start, end)."""
    pos = start
    while pos + 4 <= end:
        length, kind = _HDR.unpack_from(payload, pos)
        if length < 4:
            break
        if pos + length > end:
            raise ValueError(f"netlink attribute {kind & 0x3FFF} at offset "
                             f"{pos}: length {length} runs past its nest")
        yield kind & 0x3FFF, pos + 4, pos + length
        pos += (length + 3) & ~3


def _short(kind, size, need):
    return ValueError(f"netlink attribute {kind}: {size} bytes, "
                      f"its type needs {need}")


def decode_stats(payload, start, end, names, wide):
    """A stats nest -> {name: counter}; ``names[type]`` names a counter
    (None: not decoded), values are u64 when ``wide`` else u32."""
    st = _U64 if wide else _U32
    out = {}
    for kind, a, b in _attrs(payload, start, end):
        if kind < len(names) and names[kind] is not None:
            if b - a < st.size:
                raise _short(kind, b - a, st.size)
            out[names[kind]] = st.unpack_from(payload, a)[0]
    return out


def decode_nest(payload, start, end, table, af_attr, stats, stats_names):
    """One IPVS service/dest nest ``payload[start:end]`` -> dict.

    ``table[type]`` is None (attribute ignored) or ``(name, code)``.  The
    attribute ``af_attr`` gives the address family of ADDR attributes
    (AF_INET when absent); an IPv4 netmask (``name == "netmask"``) is shown
    dotted, as pyroute2 shows it.  STATS nests are decoded only when
    ``stats`` is true.  Raises ValueError on an attribute too short for
    its type or running past the nest."""
    if not 0 <= start <= end <= len(payload):
        raise ValueError(f"nest [{start}, {end}) outside a {len(payload)}-byte message")
    out = {}
    af = socket.AF_INET
    addr = None
    for kind, a, b in _attrs(payload, start, end):
        entry = table[kind] if kind < len(table) else None
        if entry is None:
            continue
        name, code = entry
        need = _SIZE.get(code, 0)
        if b - a < need:
            raise _short(kind, b - a, need)
        if code in _FMT:
            value = struct.unpack_from(_FMT[code], payload, a)[0]
            out[name] = value
            if kind == af_attr:
                af = value
        elif code == ADDR:
            addr = (kind, name, a, b)
        elif code == FLAGS:
            out["flags"], out["flags_mask"] = _FLAGS.unpack_from(payload, a)
        elif code == STR:
            out[name] = payload[a:b].split(b"\0", 1)[0].decode()
        elif stats:
            out[name] = decode_stats(payload, a, b, stats_names, code == STATS64)
    if addr is not None:
        # decoded last: the family attribute may follow the address.
        # inet_ntop, as pyroute2 and glibc print (::ffff:1.2.3.4 style)
        kind, name, a, b = addr
        need = 16 if af == AF_INET6 else 4
        if b - a < need:
            raise _short(kind, b - a, need)
        out[name] = socket.inet_ntop(AF_INET6 if af == AF_INET6 else socket.AF_INET,
                                       payload[a:a + need])
    if "netmask" in out and af != AF_INET6:
        out["netmask"] = socket.inet_ntoa(_U32.pack(out["netmask"]))
    return out
