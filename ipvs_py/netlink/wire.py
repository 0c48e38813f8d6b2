"""A fast codec for the IPVS generic-netlink messages a sync sends and reads.

pyroute2 encodes and decodes attributes with generic, reflective Python;
profiled in the TCG guest, a 300-service x 4-dest sync spent 19.9 of 36.5 s
in pyroute2's encode and most of a config read in its attribute decoding.
This module does only the IPVS service/dest messages, with precomputed
``struct`` formats, and pipelines requests (many in flight, ACKs matched
by sequence number).

It declares no attribute numbers of its own: they are the positions in
pyroute2's ``ipvsmsg`` schema, and tests/unit/test_netlink_wire.py checks
that every message encoded here is byte-for-byte what pyroute2 encodes and
that every reply decodes to what pyroute2 decodes.  One deliberate
difference: pyroute2 types IPVS_DEST_ATTR_TUN_PORT as a host-order u16,
the kernel reads it with nla_get_be16 (ipvsadm sends htons(port)), so it
is encoded in network order here.
"""
import errno
import mmap
import socket
import struct

from pyroute2.netlink.generic import ipvs as _ipvs

from .._core import load

_nlattr = load("nlattr")
_nldump = load("nldump")

CMD_GET_SERVICE, CMD_GET_DEST = _ipvs.IPVS_CMD_GET_SERVICE, _ipvs.IPVS_CMD_GET_DEST

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 1, 2, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
_NLMSG_HDR = struct.Struct("=IHHII")
_GENL_HDR = struct.Struct("=BBH")
_NLA_HDR = struct.Struct("=HH")


def _numbers(nla_class):
    return {name.split("_ATTR_", 1)[1].lower(): i
            for i, (name, _) in enumerate(nla_class.nla_map)}


CMD_ATTR = _numbers(_ipvs.ipvsmsg)
SVC_ATTR = _numbers(_ipvs.ipvsmsg.service)
DEST_ATTR = _numbers(_ipvs.ipvsmsg.dest)
_CMD_SERVICE, _CMD_DEST = CMD_ATTR["service"], CMD_ATTR["dest"]
STATS_ATTR = {v: k for k, v in _numbers(_ipvs.ipvsmsg.service.stats).items()}

# attribute suffix -> (struct format or kind)
_SVC_TYPES = {"af": "=H", "protocol": "=H", "addr": "addr", "port": ">H",
              "fwmark": "=I", "sched_name": "str", "flags": "flags",
              "timeout": "=I", "netmask": "=I", "pe_name": "str",
              "stats": "stats32", "stats64": "stats64"}
_DEST_TYPES = {"addr": "addr", "port": ">H", "fwd_method": "=I",
               "weight": "=I", "u_thresh": "=I", "l_thresh": "=I",
               "active_conns": "=I", "inact_conns": "=I",
               "persist_conns": "=I", "addr_family": "=H",
               "tun_type": "=B", "tun_port": ">H", "tun_flags": "=H",
               "stats": "stats32", "stats64": "stats64"}
_RENAME = {"active_conns": "activeconns", "inact_conns": "inactconns",
           "persist_conns": "persistconns"}


def _nla(kind, payload):
    length = 4 + len(payload)
    return _NLA_HDR.pack(length, kind) + payload + b"\0" * (-length & 3)


def _addr(value):
    # inet_pton, not ipaddress: 79 ns against 2.43 us a call (timeit, dev
    # host), and a 2,000 x 4 sync encodes 18,000 addresses
    if isinstance(value, bytes):
        return value
    value = str(value)
    return socket.inet_pton(socket.AF_INET6 if ":" in value else
                            socket.AF_INET, value)


def _encoder(num, fmt):
    """value -> one whole attribute of number ``num`` (header, payload,
    padding).  Fixed-size headers and padding are built once here: this
    runs for every field of every request of a sync."""
    if fmt == "addr":
        return lambda v: _nla(num, _addr(v))
    if fmt == "str":
        return lambda v: _nla(num, v.encode() + b"\0")
    st = struct.Struct("=II" if fmt == "flags" else fmt)
    head = _NLA_HDR.pack(4 + st.size, num)
    pad = b"\0" * (-st.size & 3)
    if fmt == "flags":
        return lambda v: head + st.pack(v, 0xFFFFFFFF) + pad
    return lambda v: head + st.pack(v) + pad


_SVC_FIELDS = ("af", "protocol", "addr", "port", "fwmark", "sched_name",
               "flags", "timeout", "netmask", "pe_name")
_SVC_KEY_FIELDS = _SVC_FIELDS[:5]
_DEST_FIELDS = ("addr", "port", "fwd_method", "weight", "u_thresh",
                "l_thresh", "addr_family", "tun_type", "tun_port", "tun_flags")
_SVC_ENC = {k: _encoder(SVC_ATTR[k], _SVC_TYPES[k]) for k in _SVC_FIELDS}
_DEST_ENC = {k: _encoder(DEST_ATTR[k], _DEST_TYPES[k]) for k in _DEST_FIELDS}


# Attribute order: pyroute2 sends attributes in the order given, and the
# kernel does not care; we keep the schema order so the bytes are stable.
def encode_service(svc, key_only=False):
    """A service dict (as IPVSConnection takes) -> the nested attribute."""
    out = []
    af = svc.get("af", 2)
    fwmark = svc.get("fwmark")
    for k in _SVC_KEY_FIELDS if key_only else _SVC_FIELDS:
        v = svc.get(k)
        if v is None:
            continue
        if fwmark and k in ("protocol", "addr", "port"):
            continue
        if k == "netmask":
            v = _netmask_u32(af, v)
        out.append(_SVC_ENC[k](v))
    # no NLA_F_NESTED: pyroute2 (proven against the kernel) sets none, and
    # the kernel parses these nests with nla_parse_nested_deprecated.
    return _nla(_CMD_SERVICE, b"".join(out))


def _netmask_u32(af, v):
    if af == 10:
        return int(v)
    if isinstance(v, str):
        return struct.unpack("=I", socket.inet_aton(v))[0]
    return struct.unpack("=I", struct.pack(">I", v))[0]


def encode_dest(dest):
    """A dest dict -> the nested attribute."""
    out = []
    for k in _DEST_FIELDS:
        v = dest.get(k)
        if v is not None:
            out.append(_DEST_ENC[k](v))
    return _nla(_CMD_DEST, b"".join(out))


def encode_request(family, cmd, seq, attrs=b"", dump=False, ack=True):
    """One generic-netlink request with its headers.  Without ``ack`` the
    kernel answers only if the request fails (netlink_rcv_skb)."""
    body = _GENL_HDR.pack(cmd, _ipvs.GENL_VERSION, 0) + attrs
    flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK if ack else 0)
    return _NLMSG_HDR.pack(16 + len(body), family, flags, seq, 0) + body


_CODES = {"=B": _nlattr.U8, "=H": _nlattr.U16, ">H": _nlattr.BE16,
          "=I": _nlattr.U32, "addr": _nlattr.ADDR, "flags": _nlattr.FLAGS,
          "str": _nlattr.STR, "stats32": _nlattr.STATS32,
          "stats64": _nlattr.STATS64}


def _table(types, numbers):
    """The decode table of ``_core.nlattr``: ``table[attribute number]`` is
    None or (name shown to callers, decode code)."""
    out = [None] * (max(numbers.values()) + 1)
    for name, num in numbers.items():
        if name in types:
            out[num] = (_RENAME.get(name, name), _CODES[types[name]])
    return tuple(out)


_SVC_TABLE = _table(_SVC_TYPES, SVC_ATTR)
_DEST_TABLE = _table(_DEST_TYPES, DEST_ATTR)
_STATS_NAMES = tuple(STATS_ATTR.get(i) for i in range(max(STATS_ATTR) + 1))
_SVC_AF, _DEST_AF = SVC_ATTR["af"], DEST_ATTR["addr_family"]


def decode_messages(buf):
    """Split a receive buffer into (type, flags, seq, payload-or-errno)."""
    pos, out = 0, []
    while pos + 16 <= len(buf):
        length, mtype, flags, seq, _ = _NLMSG_HDR.unpack_from(buf, pos)
        if length < 16:
            break
        if mtype == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", buf, pos + 16)
            out.append((mtype, flags, seq, -code))
        else:
            out.append((mtype, flags, seq, buf[pos + 16:pos + length]))
        pos += (length + 3) & ~3
    return out


def _top_attributes(payload):
    """(type, payload start, end) of each top-level attribute of a
    generic-netlink message payload (after its 4-byte genl header)."""
    pos, end = 4, len(payload)
    while pos + 4 <= end:
        length, kind = _NLA_HDR.unpack_from(payload, pos)
        if length < 4:
            return
        yield kind & 0x3FFF, pos + 4, pos + length
        pos += (length + 3) & ~3


def decode_reply(payload, stats=True):
    """A GET_SERVICE/GET_DEST reply payload -> ("service"|"dest", dict)."""
    for kind, start, stop in _top_attributes(payload):
        if kind == _CMD_SERVICE:
            return "service", _nlattr.decode_nest(
                payload, start, stop, _SVC_TABLE, _SVC_AF, stats,
                _STATS_NAMES)
        if kind == _CMD_DEST:
            return "dest", _nlattr.decode_nest(
                payload, start, stop, _DEST_TABLE, _DEST_AF, stats,
                _STATS_NAMES)
    return None, {}


class WireChannel:
    """Requests over one raw NETLINK_GENERIC socket bound to IPVS.

    ``family``: the generic-netlink family id, or its name to resolve
    (CTRL_CMD_GETFAMILY; OSError(ENOENT) when the kernel has no such
    family).
    """

    #: Requests in flight before reading the answers: even if all 512 fail,
    #: their error messages (each carries its request, ~170 bytes) stay far
    #: below the default 208 KiB receive buffer, so none is dropped (ENOBUFS).
    WINDOW = 512
    #: Bytes per sendmsg: far below the socket's send buffer (net.core.
    #: wmem_default, 208 KiB), past which the kernel answers EMSGSIZE.
    SEND_BYTES = 32 * 1024
    #: Bytes per recv: one page, at most 8 KiB.  Netlink sizes a dump's
    #: buffers after the largest read the socket has seen (max_recvmsg_len,
    #: up to 32 KiB) but never below NLMSG_GOODSIZE (a page less the skb
    #: overhead, for pages up to 8 KiB), so a part always fits this.
    #: Reading with 1 MiB made every 4-dest dump allocate 32 KiB: 130 us a
    #: dump in the TCG guest against 76 us with 4 KiB reads (nldump.pyx).
    RECV_BYTES = min(mmap.PAGESIZE, 8192)

    def __init__(self, sock, family):
        self.sock = sock
        self.seq = 1
        sock.bind((0, 0))
        self.family = self._family_id(family) if isinstance(family, str) \
            else family

    def _family_id(self, name):
        seq = self._next_seq()
        attrs = _nla(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
        self.sock.send(encode_request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, seq,
                                      attrs, ack=False))
        while True:
            for mtype, _flags, mseq, payload in decode_messages(self._recv()):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    raise OSError(payload or errno.EPROTO,
                                  f"generic netlink family {name!r}")
                for kind, start, stop in _top_attributes(payload):
                    if kind == CTRL_ATTR_FAMILY_ID and stop - start >= 2:
                        return struct.unpack_from("=H", payload, start)[0]
                raise OSError(errno.EPROTO, f"no id in the reply for {name!r}")

    def close(self):
        self.sock.close()

    def _next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        return self.seq

    def dump(self, cmd, attrs=b""):
        """Run one dump; return the reply payloads.  Raises OSError(errno)."""
        (raw,) = self.dump_each(cmd, [attrs])
        return [payload for _t, _f, _s, payload in decode_messages(raw)]

    def dump_each(self, cmd, requests):
        """One dump per entry of ``requests`` (attribute bytes), run in one
        compiled loop; the raw messages of each.  Raises OSError(errno)
        with ``dump_index`` naming the dump that failed."""
        first = self._next_seq()
        try:
            return _nldump.dump_each(self.sock.fileno(), self.family, cmd,
                                     list(requests), first, _ipvs.GENL_VERSION,
                                     self.RECV_BYTES)
        finally:
            self.seq = (first + len(requests)) & 0xFFFFFFFF or 1

    def _recv(self):
        # recvmsg, not recv: MSG_TRUNC in the flags tells a datagram cut at
        # RECV_BYTES, which must fail loudly, never be half-read
        data, _anc, flags, _addr = self.sock.recvmsg(self.RECV_BYTES)
        if flags & socket.MSG_TRUNC:
            raise OSError(errno.EMSGSIZE, f"netlink reply longer than "
                                          f"{self.RECV_BYTES} bytes")
        return data

    def pipeline(self, requests):
        """Send ``(cmd, attrs)`` requests, WINDOW at a time; return one errno
        per request (0 = done), in order.  Every request is sent: the kernel
        handles each on its own, so the caller sees all outcomes.

        A window goes out in as few sendmsg calls as SEND_BYTES allows, and
        only the last request of each send asks for an ACK.  The kernel runs
        the messages of one send in turn (netlink_rcv_skb) and answers a
        request without NLM_F_ACK only when it fails, so once the last one's
        ACK is read every answer of that send has been read, and a request
        with none succeeded.  A 2,000 x 4 sync then makes ~40 sends and ~40
        receives instead of 10,000 of each (profiled in the TCG guest: one
        recv per ACK took 1.3 of 5.4 s, its Python loop another 1.0 s)."""
        results = []
        for start in range(0, len(requests), self.WINDOW):
            chunk = requests[start:start + self.WINDOW]
            seqs, sends = {}, []
            batch, size = [], 0
            for i, (cmd, attrs) in enumerate(chunk):
                seq = self._next_seq()
                seqs[seq] = i
                body_len = 20 + len(attrs)
                if size + body_len > self.SEND_BYTES and batch:
                    sends.append(batch)
                    batch, size = [], 0
                batch.append((cmd, seq, attrs))
                size += body_len
            sends.append(batch)
            waiting = set()
            for batch in sends:
                last = len(batch) - 1
                self.sock.send(b"".join(
                    encode_request(self.family, cmd, seq, attrs, ack=j == last)
                    for j, (cmd, seq, attrs) in enumerate(batch)))
                waiting.add(batch[last][1])
            got = [0] * len(chunk)
            while waiting:
                data = self._recv()
                for mtype, _flags, mseq, payload in decode_messages(data):
                    if mtype == NLMSG_ERROR and mseq in seqs:
                        got[seqs[mseq]] = payload
                        waiting.discard(mseq)
            results.extend(got)
        return results
