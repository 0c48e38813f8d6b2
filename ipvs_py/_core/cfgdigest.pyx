# cython: language_level=3, boundscheck=False, wraparound=False
"""Service fingerprints: one bytes value per IPVS service, equal on the
kernel's side and the model's exactly when a sync would change nothing in
that service.

A fingerprint is the service's canonical record followed by its
destinations' records, sorted.  A record holds every field a sync sets
(``netlink.config.ServiceConfig`` / ``DestConfig``), normalised the way
``config_of_kernel`` and ``config_of_model`` normalise them: user flags
only (no F_HASHED), fwmark services without protocol/address/port,
tunnel fields only for tunnel destinations, a destination's family
defaulting to its service's.  Counters and stats are left out.

Why: a no-op re-sync of 2,000 x 4 built 10,000 DestConfig objects a side
and compared them in Python, 0.55 s of the TCG guest's 3.9 s.  Here both
sides become 2,000 bytes values in C, and only services whose values
differ are decoded and planned.  tests/core/test_cfgdigest.py checks,
with hypothesis, that equal fingerprints mean equal configs and back.

Kernel facts: attribute numbers and layouts are include/uapi/linux/ip_vs.h
(enum IPVS_SVC_ATTR_*, IPVS_DEST_ATTR_*), filled by ip_vs_genl_fill_service
and ip_vs_genl_fill_dest in net/netfilter/ipvs/ip_vs_ctl.c.
"""
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from cpython.long cimport PyLong_AsUnsignedLongMask
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.stdlib cimport malloc, free, qsort
from libc.string cimport memcpy, memset, memcmp, memchr

from .nlattr cimport u16_at, u32_at, next_attr

cdef enum:
    AF_INET = 2
    AF_INET6 = 10
    F_HASHED = 0x0002
    FWD_TUNNEL = 2
    CMD_ATTR_SERVICE = 1
    CMD_ATTR_DEST = 2
    SVC_AF = 1
    SVC_PROTOCOL = 2
    SVC_ADDR = 3
    SVC_PORT = 4
    SVC_FWMARK = 5
    SVC_SCHED_NAME = 6
    SVC_FLAGS = 7
    SVC_TIMEOUT = 8
    SVC_NETMASK = 9
    SVC_PE_NAME = 11
    DEST_ADDR = 1
    DEST_PORT = 2
    DEST_FWD_METHOD = 3
    DEST_WEIGHT = 4
    DEST_U_THRESH = 5
    DEST_L_THRESH = 6
    DEST_ADDR_FAMILY = 11
    DEST_TUN_TYPE = 13
    DEST_TUN_PORT = 14
    DEST_TUN_FLAGS = 15
    NAME_BYTES = 32         # IP_VS_SCHEDNAME_MAXLEN 16, IP_VS_PENAME_MAXLEN 32

#: Attribute numbers this module reads, for tests against netlink/wire.py.
SVC_ATTRS = dict(af=SVC_AF, protocol=SVC_PROTOCOL, addr=SVC_ADDR,
                 port=SVC_PORT, fwmark=SVC_FWMARK, sched_name=SVC_SCHED_NAME,
                 flags=SVC_FLAGS, timeout=SVC_TIMEOUT, netmask=SVC_NETMASK,
                 pe_name=SVC_PE_NAME)
DEST_ATTRS = dict(addr=DEST_ADDR, port=DEST_PORT, fwd_method=DEST_FWD_METHOD,
                  weight=DEST_WEIGHT, u_thresh=DEST_U_THRESH,
                  l_thresh=DEST_L_THRESH, addr_family=DEST_ADDR_FAMILY,
                  tun_type=DEST_TUN_TYPE, tun_port=DEST_TUN_PORT,
                  tun_flags=DEST_TUN_FLAGS)


cdef packed struct SvcRec:
    uint16_t af
    uint16_t protocol
    uint32_t fwmark
    uint8_t addr[16]
    uint16_t port
    uint16_t pad
    uint32_t flags
    uint32_t timeout
    uint32_t netmask            # IPv4: the mask as a host-order int; IPv6: prefix
    char sched[NAME_BYTES]
    char pe[NAME_BYTES]


cdef packed struct DestRec:
    uint16_t af
    uint16_t port
    uint8_t addr[16]
    uint32_t fwd
    uint32_t weight
    uint32_t u_thresh
    uint32_t l_thresh
    uint16_t tun_port
    uint16_t tun_flags
    uint8_t tun_type
    uint8_t pad[3]

SVC_RECORD_BYTES = sizeof(SvcRec)
DEST_RECORD_BYTES = sizeof(DestRec)


cdef inline uint16_t _be16(const uint8_t *p) noexcept nogil:
    return (p[0] << 8) | p[1]


cdef inline uint32_t _be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | \
        (<uint32_t>p[2] << 8) | p[3]


cdef int _need(int kind, Py_ssize_t size, Py_ssize_t need) except -1:
    if size < need:
        raise ValueError(f"netlink attribute {kind}: {size} bytes, "
                         f"its type needs {need}")
    return 0


cdef void _name(char *dst, const uint8_t *p, Py_ssize_t size) noexcept:
    cdef const uint8_t *nul = <const uint8_t *>memchr(p, 0, size)
    cdef Py_ssize_t n = (nul - p) if nul != NULL else size
    memcpy(dst, p, n if n < NAME_BYTES else NAME_BYTES)


cdef inline Py_ssize_t _addr_len(uint16_t af) noexcept:
    return 16 if af == AF_INET6 else 4


cdef object _key(SvcRec *r):
    """netlink.config.ServiceConfig.key of a record."""
    if r.fwmark:
        return (r.af, r.fwmark)
    return (r.af, r.protocol,
            PyBytes_FromStringAndSize(<char *>r.addr, _addr_len(r.af)), r.port)


# ----------------------------------------------------------- kernel side

cdef Py_ssize_t _nest(const uint8_t *p, Py_ssize_t n, int want,
                      Py_ssize_t *end) except -2:
    """The payload start of attribute ``want`` among a generic-netlink
    message's top-level attributes (after the 4-byte genl header), or -1."""
    cdef Py_ssize_t pos = 4, nxt, stop
    cdef int kind
    while True:
        nxt = next_attr(p, pos, n, &kind, &stop)
        if nxt < 0:
            return -1
        if kind == want:
            end[0] = stop
            return pos + 4
        pos = nxt


cdef enum:
    KEY_NEST_MAX = 256          # AF, PROTOCOL, ADDR, PORT, FWMARK: 56 bytes


cdef enum:
    # how an attribute's payload lands in a record (the role of the
    # kernel's nla_policy arrays, ip_vs_svc_policy / ip_vs_dest_policy)
    AS_U8 = 1
    AS_U16 = 2
    AS_BE16 = 3
    AS_U32 = 4
    AS_FLAGS = 5            # struct ip_vs_flags: flags, then the mask
    AS_NAME = 6
    AS_ADDR = 7             # read once the family is known
    N_ATTRS = 16


cdef struct Field:
    int type
    Py_ssize_t offset


cdef Py_ssize_t[8] _NEED_BYTES
_NEED_BYTES[:] = [0, 1, 2, 2, 4, 8, 0, 0]
cdef Field[N_ATTRS] SVC_FIELDS
cdef Field[N_ATTRS] DEST_FIELDS
cdef SvcRec _s
cdef DestRec _d


cdef Field _at(int type, void *field, void *record):
    cdef Field f
    f.type, f.offset = type, <char *>field - <char *>record
    return f


for _i in range(N_ATTRS):
    SVC_FIELDS[_i].type = DEST_FIELDS[_i].type = 0
SVC_FIELDS[SVC_AF] = _at(AS_U16, &_s.af, &_s)
SVC_FIELDS[SVC_PROTOCOL] = _at(AS_U16, &_s.protocol, &_s)
SVC_FIELDS[SVC_ADDR] = _at(AS_ADDR, &_s.addr, &_s)
SVC_FIELDS[SVC_PORT] = _at(AS_BE16, &_s.port, &_s)
SVC_FIELDS[SVC_FWMARK] = _at(AS_U32, &_s.fwmark, &_s)
SVC_FIELDS[SVC_SCHED_NAME] = _at(AS_NAME, &_s.sched, &_s)
SVC_FIELDS[SVC_PE_NAME] = _at(AS_NAME, &_s.pe, &_s)
SVC_FIELDS[SVC_FLAGS] = _at(AS_FLAGS, &_s.flags, &_s)
SVC_FIELDS[SVC_TIMEOUT] = _at(AS_U32, &_s.timeout, &_s)
SVC_FIELDS[SVC_NETMASK] = _at(AS_U32, &_s.netmask, &_s)
DEST_FIELDS[DEST_ADDR] = _at(AS_ADDR, &_d.addr, &_d)
DEST_FIELDS[DEST_PORT] = _at(AS_BE16, &_d.port, &_d)
DEST_FIELDS[DEST_FWD_METHOD] = _at(AS_U32, &_d.fwd, &_d)
DEST_FIELDS[DEST_WEIGHT] = _at(AS_U32, &_d.weight, &_d)
DEST_FIELDS[DEST_U_THRESH] = _at(AS_U32, &_d.u_thresh, &_d)
DEST_FIELDS[DEST_L_THRESH] = _at(AS_U32, &_d.l_thresh, &_d)
DEST_FIELDS[DEST_ADDR_FAMILY] = _at(AS_U16, &_d.af, &_d)
DEST_FIELDS[DEST_TUN_TYPE] = _at(AS_U8, &_d.tun_type, &_d)
DEST_FIELDS[DEST_TUN_PORT] = _at(AS_BE16, &_d.tun_port, &_d)
DEST_FIELDS[DEST_TUN_FLAGS] = _at(AS_U16, &_d.tun_flags, &_d)


cdef uint32_t _fill(char *record, const Field *fields, const uint8_t *p,
                    Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *addr_at,
                    Py_ssize_t *addr_size) except? 0xFFFFFFFF:
    """Copy the attributes of the nest [pos, end) that ``fields`` names
    into ``record``; the address's place is left in ``addr_at`` /
    ``addr_size``.  Returns the set of attribute numbers seen (bit mask)."""
    cdef Py_ssize_t nxt, stop, a, size
    cdef int kind, type
    cdef uint16_t v
    cdef uint32_t seen = 0
    cdef char *dst
    while True:
        nxt = next_attr(p, pos, end, &kind, &stop)
        if nxt < 0:
            return seen
        a, size, pos = pos + 4, stop - pos - 4, nxt
        if kind >= N_ATTRS or not fields[kind].type:
            continue
        type, dst = fields[kind].type, record + fields[kind].offset
        _need(kind, size, _NEED_BYTES[type])
        seen |= 1u << kind
        if type == AS_U8:
            dst[0] = p[a]
        elif type == AS_U16:
            memcpy(dst, p + a, 2)
        elif type == AS_BE16:
            v = _be16(p + a)
            memcpy(dst, &v, 2)
        elif type == AS_U32 or type == AS_FLAGS:
            memcpy(dst, p + a, 4)
        elif type == AS_NAME:
            _name(dst, p + a, size)
        else:
            addr_at[0], addr_size[0] = a, size


cdef Py_ssize_t _kernel_svc(SvcRec *r, const uint8_t *p, Py_ssize_t pos,
                            Py_ssize_t end, uint8_t *key_nest) except -1:
    """Fill ``r`` from the service nest [pos, end); write the service's key
    nest (header and key attributes) to ``key_nest``; return its length."""
    cdef Py_ssize_t nxt, stop, addr_at = -1, addr_size = 0
    cdef Py_ssize_t key_len = 4, padded
    cdef uint16_t head[2]
    cdef int kind
    memset(r, 0, sizeof(SvcRec))
    r.af = AF_INET
    seen = _fill(<char *>r, SVC_FIELDS, p, pos, end, &addr_at, &addr_size)
    r.flags &= ~(<uint32_t>F_HASHED)
    if seen & (1u << SVC_NETMASK):
        if r.af != AF_INET6:         # a __be32 mask on the wire
            r.netmask = _be32(<const uint8_t *>&r.netmask)
    else:
        r.netmask = 128 if r.af == AF_INET6 else 0xFFFFFFFF
    if r.fwmark:
        r.protocol, r.port = 0, 0
    elif addr_at >= 0:
        _need(SVC_ADDR, addr_size, _addr_len(r.af))
        memcpy(r.addr, p + addr_at, _addr_len(r.af))
    # the dest dump's request carries the key as the kernel wrote it
    while True:
        nxt = next_attr(p, pos, end, &kind, &stop)
        if nxt < 0:
            break
        if kind in (SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK):
            padded = (stop - pos + 3) & ~3
            if key_len + padded > KEY_NEST_MAX:
                raise ValueError(f"service key attributes over {KEY_NEST_MAX} bytes")
            memset(key_nest + key_len, 0, padded)
            memcpy(key_nest + key_len, p + pos, stop - pos)
            key_len += padded
        pos = nxt
    head[0], head[1] = <uint16_t>key_len, CMD_ATTR_SERVICE
    memcpy(key_nest, head, 4)
    return key_len


cdef Py_ssize_t _next_message(const uint8_t *base, Py_ssize_t n,
                              Py_ssize_t pos, Py_ssize_t *mlen) except -2:
    """The netlink message at ``pos`` of an ``n``-byte dump: its length in
    ``mlen``; returns the next message's offset, or -1 at the dump's end."""
    if pos + 16 > n:
        return -1
    mlen[0] = u32_at(base + pos)
    if mlen[0] < 16 or pos + mlen[0] > n:
        raise ValueError(f"netlink message at offset {pos}: length {mlen[0]} "
                         f"outside a {n}-byte dump")
    return pos + ((mlen[0] + 3) & ~3)


def kernel_services(bytes dump):
    """A GET_SERVICE dump (raw messages) -> ``(keys, requests, records,
    payloads)``, one entry per service, in dump order: its config key, the
    request attributes of a GET_DEST dump for it (its key nest), its
    record, and the message payload (for ``wire.decode_reply``)."""
    cdef const uint8_t *base = <const uint8_t *>PyBytes_AS_STRING(dump)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(dump), pos = 0, nxt, mlen, start, end
    cdef SvcRec rec
    cdef uint8_t key_nest[KEY_NEST_MAX]
    cdef Py_ssize_t key_len
    keys, requests, records, payloads = [], [], [], []
    while True:
        nxt = _next_message(base, n, pos, &mlen)
        if nxt < 0:
            break
        payload = dump[pos + 16:pos + mlen]
        pos = nxt
        start = _nest(<const uint8_t *>PyBytes_AS_STRING(payload),
                      PyBytes_GET_SIZE(payload), CMD_ATTR_SERVICE, &end)
        if start < 0:
            continue
        key_len = _kernel_svc(&rec, <const uint8_t *>PyBytes_AS_STRING(payload),
                              start, end, key_nest)
        keys.append(_key(&rec))
        requests.append(PyBytes_FromStringAndSize(<char *>key_nest, key_len))
        records.append(PyBytes_FromStringAndSize(<char *>&rec, sizeof(SvcRec)))
        payloads.append(payload)
    return keys, requests, records, payloads


cdef int _kernel_dest(DestRec *r, uint16_t svc_af, const uint8_t *p,
                      Py_ssize_t pos, Py_ssize_t end) except -1:
    cdef Py_ssize_t addr_at = -1, addr_size = 0
    memset(r, 0, sizeof(DestRec))
    r.af = svc_af
    _fill(<char *>r, DEST_FIELDS, p, pos, end, &addr_at, &addr_size)
    if addr_at >= 0:
        _need(DEST_ADDR, addr_size, _addr_len(r.af))
        memcpy(r.addr, p + addr_at, _addr_len(r.af))
    if r.fwd != FWD_TUNNEL:
        r.tun_type, r.tun_port, r.tun_flags = 0, 0, 0
    return 0


cdef int _cmp_dest(const void *a, const void *b) noexcept nogil:
    return memcmp(a, b, sizeof(DestRec))



cdef bytes _fingerprint(const SvcRec *svc, const DestRec *dests, Py_ssize_t count):
    """The fingerprint of a service record and its dest records, sorted."""
    cdef bytes out
    out = PyBytes_FromStringAndSize(NULL, sizeof(SvcRec) + count * sizeof(DestRec))
    memcpy(PyBytes_AS_STRING(out), svc, sizeof(SvcRec))
    if count:
        memcpy(PyBytes_AS_STRING(out) + sizeof(SvcRec), dests,
               count * sizeof(DestRec))
    return out


cdef class _DestBuf:
    """A growable array of DestRec."""
    cdef DestRec *recs
    cdef Py_ssize_t count, cap

    def __dealloc__(self):
        free(self.recs)

    cdef DestRec *next(self) except NULL:
        cdef DestRec *grown
        if self.count == self.cap:
            self.cap = self.cap * 2 if self.cap else 64
            grown = <DestRec *>malloc(self.cap * sizeof(DestRec))
            if grown == NULL:
                raise MemoryError()
            if self.recs != NULL:
                memcpy(grown, self.recs, self.count * sizeof(DestRec))
                free(self.recs)
            self.recs = grown
        self.count += 1
        return &self.recs[self.count - 1]


cdef inline void _sort(_DestBuf buf) noexcept:
    # not qsort(NULL, 0): its pointer is declared nonnull (UBSan says so)
    if buf.count > 1:
        qsort(buf.recs, buf.count, sizeof(DestRec), _cmp_dest)


def kernel_fingerprints(list records, list dest_dumps):
    """Fingerprints of the services of ``kernel_services`` (their records)
    from their GET_DEST dumps (raw messages, one bytes per service)."""
    if len(records) != len(dest_dumps):
        raise ValueError(f"{len(records)} services but {len(dest_dumps)} "
                         f"destination dumps")
    cdef _DestBuf buf = _DestBuf()
    cdef SvcRec svc
    cdef const uint8_t *base
    cdef Py_ssize_t n, pos, nxt, mlen, start, end
    out = []
    for record, dump in zip(records, dest_dumps):
        if not isinstance(record, bytes) or PyBytes_GET_SIZE(record) != sizeof(SvcRec):
            raise ValueError("not a service record of kernel_services()")
        memcpy(&svc, PyBytes_AS_STRING(record), sizeof(SvcRec))
        buf.count = 0
        base = <const uint8_t *>PyBytes_AS_STRING(dump)
        n, pos = PyBytes_GET_SIZE(dump), 0
        while True:
            nxt = _next_message(base, n, pos, &mlen)
            if nxt < 0:
                break
            start = _nest(base + pos + 16, mlen - 16, CMD_ATTR_DEST, &end)
            if start >= 0:
                _kernel_dest(buf.next(), svc.af, base + pos + 16, start, end)
            pos = nxt
        _sort(buf)
        out.append(_fingerprint(&svc, buf.recs, buf.count))
    return out


# ------------------------------------------------------------ model side

cdef uint32_t _u32_of(obj, str field) except? 0xFFFFFFFF:
    value = getattr(obj, field)
    if value is None:
        return 0
    return <uint32_t>PyLong_AsUnsignedLongMask(value)


cdef int _text(char *dst, obj, str field) except -1:
    value = getattr(obj, field) or ""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if len(raw) > NAME_BYTES:
        raise ValueError(f"{field} {value!r} is longer than {NAME_BYTES} bytes")
    memcpy(dst, <char *>raw, len(raw))
    return 0


cdef int _addr(uint8_t *dst, uint16_t af, obj, str field) except -1:
    raw = getattr(obj, field)
    if not isinstance(raw, bytes) or PyBytes_GET_SIZE(raw) != _addr_len(af):
        raise ValueError(f"{field} of {obj!r}: expected {_addr_len(af)} bytes "
                         f"for address family {af}")
    memcpy(dst, PyBytes_AS_STRING(raw), _addr_len(af))
    return 0


cdef int _model_svc(SvcRec *r, svc) except -1:
    memset(r, 0, sizeof(SvcRec))
    r.af = <uint16_t>_u32_of(svc, "af")
    r.fwmark = _u32_of(svc, "fwmark")
    if not r.fwmark:
        r.protocol = <uint16_t>_u32_of(svc, "protocol")
        r.port = <uint16_t>_u32_of(svc, "port")
        _addr(r.addr, r.af, svc, "addr_bytes")
    r.flags = _u32_of(svc, "flags") & ~(<uint32_t>F_HASHED)
    r.timeout = _u32_of(svc, "timeout")
    r.netmask = _u32_of(svc, "netmask")
    _text(r.sched, svc, "sched_name")
    _text(r.pe, svc, "pe_name")
    return 0


cdef int _model_dest(DestRec *r, dest) except -1:
    memset(r, 0, sizeof(DestRec))
    r.af = <uint16_t>_u32_of(dest, "af")
    r.port = <uint16_t>_u32_of(dest, "port")
    _addr(r.addr, r.af, dest, "addr_bytes")
    r.fwd = _u32_of(dest, "fwd_method")
    r.weight = _u32_of(dest, "weight")
    r.u_thresh = _u32_of(dest, "u_thresh")
    r.l_thresh = _u32_of(dest, "l_thresh")
    if r.fwd == FWD_TUNNEL:
        r.tun_type = <uint8_t>_u32_of(dest, "tun_type")
        r.tun_port = <uint16_t>_u32_of(dest, "tun_port")
        r.tun_flags = <uint16_t>_u32_of(dest, "tun_flags")
    return 0


cdef object _model_item(item, _DestBuf buf, SvcRec *svc):
    """Fill ``svc`` and ``buf`` (sorted) from a (service, dests) pair or a
    service with a ``dests`` attribute (``ipvs_py.Service``); its key."""
    if isinstance(item, tuple):
        service, dests = item
    else:
        service, dests = item, item.dests
    _model_svc(svc, service)
    buf.count = 0
    for dest in (dests.values() if isinstance(dests, dict) else dests):
        _model_dest(buf.next(), dest)
    _sort(buf)
    return _key(svc)


def model_fingerprints(items):
    """``(keys, fingerprints)`` of ``items``, in order.  An item is a
    ``(service, dests)`` pair or a service with a ``dests`` attribute; the
    service and each dest need the attributes of ServiceConfig /
    DestConfig (``ipvs_py.Service`` / ``Dest`` and the config classes both
    have them); ``dests`` is an iterable of them or a dict whose values
    they are."""
    cdef _DestBuf buf = _DestBuf()
    cdef SvcRec svc
    keys, prints = [], []
    for item in items:
        keys.append(_model_item(item, buf, &svc))
        prints.append(_fingerprint(&svc, buf.recs, buf.count))
    return keys, prints


def differing(items, dict have):
    """``(keys, touched)``: the key of every item (as model_fingerprints
    takes them) and the indices of the items whose fingerprint is not
    ``have[key]`` (``have``: key -> fingerprint, e.g. the kernel's)."""
    cdef _DestBuf buf = _DestBuf()
    cdef SvcRec svc
    cdef Py_ssize_t i = 0
    keys, touched = [], []
    for item in items:
        key = _model_item(item, buf, &svc)
        keys.append(key)
        if have.get(key) != _fingerprint(&svc, buf.recs, buf.count):
            touched.append(i)
        i += 1
    return keys, touched
