# Linux 6.1 conn hashing (include/ipvs_conn61.h).  Included by conntab.pyx
# so that these functions reach ConnEngine's C engine; ipvs_py.conn
# switches a Netns(kernel="6.1") engine over before its first conn.

cdef extern from "ipvs_conn.h" nogil:
    int ipvs_engine_use61(ipvs_engine *e, uint32_t salt)
    uint32_t ipvs_engine_rnd61(ipvs_engine *e)
    uint32_t ipvs_engine_bucket61(ipvs_engine *e, const ipvs_conn *c)
    int64_t ipvs_engine_node_bucket(ipvs_engine *e, uint32_t cid)
    uint32_t ipvs_conn_hashkey61(uint8_t af, uint8_t proto,
                                 const uint32_t *addr, uint16_t port,
                                 uint32_t rnd, uint32_t salt)


def use_61_hashing(ConnEngine eng, uint32_t salt):
    """Hash conns as Linux 6.1 does: one node per conn, jhash of the
    client side with ip_vs_conn_rnd, XOR ``salt`` ((size_t)ipvs >> 8).
    ValueError if the engine has conns already."""
    if ipvs_engine_use61(&eng.e, salt) != 0:
        raise ValueError("6.1 hashing must be chosen before the first conn")


def hash61_rnd(ConnEngine eng):
    """ip_vs_conn_rnd of the engine's table: the low 32 bits of its
    random key."""
    return ipvs_engine_rnd61(&eng.e)


def hash61_bucket_of(ConnEngine eng, uint32_t cid):
    """The bucket conn ``cid``'s client side hashes to in 6.1 (tests
    compare it with the kernel formula and with where the node is)."""
    cdef ipvs_conn *c
    if cid >= eng.e.nslots or not ipvs_conn_of(&eng.e, cid).in_use:
        raise ValueError(f"no conn {cid}")
    return ipvs_engine_bucket61(&eng.e, ipvs_conn_of(&eng.e, cid))


def conn_bucket(ConnEngine eng, uint32_t cid):
    """The bucket that conn ``cid``'s hn0 node actually sits in (first
    array), found by walking the chains; -1 if not found."""
    return ipvs_engine_node_bucket(&eng.e, cid)
