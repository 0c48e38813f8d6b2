# ICMP errors related to a conn (include/ipvs_icmp.h).  Included by
# conntab.pyx so that these functions reach ConnEngine's C engine; the
# Python-facing API is Netns.packet(..., icmp=IcmpError(...)) and the
# ``icmp`` column of a PacketBatch (ipvs_py.icmp, ipvs_py.packets).

cdef extern from "ipvs_icmp.h" nogil:
    enum:
        IPVS_ICMP_F_ALL
    cdef struct ipvs_icmp:
        uint32_t saddr[4]
        uint32_t daddr[4]
        uint16_t sport, dport
        uint8_t type, code, proto, flags
        uint32_t tsaddr[4]
        uint32_t tdaddr[4]
        uint16_t tsport, tdport
        uint8_t tproto
    ipvs_verdict ipvs_packet_icmp(ipvs_engine *e, const ipvs_pkt *p,
                                  const ipvs_icmp *ic, uint32_t now, int *why)


@cython.final
cdef class IcmpColumns:
    """Typed views of a PacketBatch ``icmp`` column (dtype
    ipvs_py.packets.ICMP_DTYPE), read by the nogil replay loop."""
    cdef const uint8_t[:] type, code, proto, flags, tproto
    cdef const uint16_t[:] sport, dport, tsport, tdport
    # strided: fields of ICMP_DTYPE records (16 bytes each, contiguous)
    cdef const uint8_t[:, :] saddr, daddr, tsaddr, tdaddr

    def __init__(self, icmp):
        self.type = icmp["type"]
        self.code = icmp["code"]
        self.proto = icmp["proto"]
        self.flags = icmp["flags"]
        self.sport = icmp["sport"]
        self.dport = icmp["dport"]
        self.saddr = icmp["saddr"]
        self.daddr = icmp["daddr"]
        self.tproto = icmp["tproto"]
        self.tsport = icmp["tsport"]
        self.tdport = icmp["tdport"]
        self.tsaddr = icmp["tsaddr"]
        self.tdaddr = icmp["tdaddr"]

    cdef const ipvs_icmp *row(self, Py_ssize_t i,
                                     ipvs_icmp *ic) noexcept nogil:
        """Row ``i`` as the C struct (ports to network order)."""
        memcpy(ic.saddr, &self.saddr[i, 0], 16)
        memcpy(ic.daddr, &self.daddr[i, 0], 16)
        ic.sport = _ntohs(self.sport[i])
        ic.dport = _ntohs(self.dport[i])
        ic.type = self.type[i]
        ic.code = self.code[i]
        ic.proto = self.proto[i]
        ic.flags = self.flags[i] & IPVS_ICMP_F_ALL
        memcpy(ic.tsaddr, &self.tsaddr[i, 0], 16)
        memcpy(ic.tdaddr, &self.tdaddr[i, 0], 16)
        ic.tsport = _ntohs(self.tsport[i])
        ic.tdport = _ntohs(self.tdport[i])
        ic.tproto = self.tproto[i]
        return ic


def icmp_packet(ConnEngine eng, int af, int proto, bytes saddr, bytes daddr,
                rec, int fwmark=0, int length=0, int direction=0, now=None):
    """One ICMP packet at ``now`` jiffies (default: the engine clock).
    Addresses are 16 raw bytes; ``rec`` is the ICMP part, a 1-element
    ipvs_py.packets.ICMP_DTYPE array.  Returns (action name, dest index
    or -1, conn id or -1, why) where ``why`` is an enum ipvs_icmp_why
    value (ipvs_py.icmp.WHY names them)."""
    cdef ipvs_pkt p
    cdef ipvs_icmp ic
    cdef ipvs_verdict v
    cdef int why = 0
    cdef uint32_t t = eng.e.now if now is None else <uint32_t>now
    cdef IcmpColumns cols = IcmpColumns(rec)
    if len(saddr) != 16 or len(daddr) != 16:
        raise ValueError("addresses are 16 raw bytes")
    if cols.type.shape[0] != 1:
        raise ValueError("rec must hold one ICMP_DTYPE record")
    memset(&p, 0, sizeof(p))
    memcpy(p.saddr, <char *>saddr, 16)
    memcpy(p.daddr, <char *>daddr, 16)
    p.af, p.protocol, p.dir = af, proto, direction
    p.fwmark, p.len = fwmark, length
    cols.row(0, &ic)
    eng._cb_exc = None
    v = ipvs_packet_icmp(&eng.e, &p, &ic, t, &why)
    eng._after()
    return (_ACTIONS[v.action], v.dest,
            -1 if v.conn == IPVS_CONN_NONE else v.conn, why)


def set_dest_tunnel(ConnEngine eng, int idx, int tun_type, int tun_port):
    """Tunnel type and port of dest ``idx`` (ip_vs_find_tunnel reads
    them for ICMP errors about IPIP packets)."""
    if not 0 <= idx < <int>eng.e.ndests:
        raise ValueError(f"no dest {idx}")
    eng.e.dests[idx].tun_type = tun_type
    eng.e.dests[idx].tun_port = _ntohs(tun_port)


def set_schedule_icmp(ConnEngine eng, bint on):
    """The schedule_icmp sysctl: an ICMP error with no conn may make one."""
    eng.e.schedule_icmp = 1 if on else 0


def conn_info(ConnEngine eng, uint32_t cid):
    """Conn ``cid`` as (af, proto, caddr16, cport, vaddr16, vport, daddr16,
    dport, flags, state, expires, in_pkts), ports host order; None when
    the id is not a live conn."""
    cdef ipvs_conn *c
    if cid >= eng.e.nslots:
        return None
    c = ipvs_conn_of(&eng.e, cid)
    if not c.in_use:
        return None
    return (c.af, c.protocol, (<char *>c.caddr)[:16], _ntohs(c.cport),
            (<char *>c.vaddr)[:16], _ntohs(c.vport), (<char *>c.daddr)[:16],
            _ntohs(c.dport), c.flags, c.state, c.expires, c.in_pkts)
