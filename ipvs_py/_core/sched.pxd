# cython: language_level=3
"""C-level interface to the schedulers of ``include/ipvs_sched.h``.

A batch replay ``cimport``\\ s these to schedule without the GIL::

    from ipvs_py._core.sched cimport ipvs_sched_svc_t, ipvs_sched_schedule

Nothing here touches Python objects; the whole block is ``nogil``.
"""
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "ipvs_sched.h" nogil:
    enum:
        IPVS_SCHED_NONE, IPVS_SCHED_RR, IPVS_SCHED_WRR, IPVS_SCHED_LC,
        IPVS_SCHED_WLC, IPVS_SCHED_SED, IPVS_SCHED_NQ, IPVS_SCHED_FO,
        IPVS_SCHED_OVF, IPVS_SCHED_SH, IPVS_SCHED_DH, IPVS_SCHED_MH
    enum:
        IPVS_COUNT_NONE, IPVS_COUNT_ACTIVE, IPVS_COUNT_INACTIVE
    enum:
        IPVS_SCHED_SH_TAB_SIZE
        IPVS_SCHED_MH_TAB_SIZE

    ctypedef struct ipvs_sched_dest_t:
        int32_t weight
        int32_t last_weight
        uint32_t flags
        int32_t activeconns
        int32_t inactconns
        uint32_t u_threshold
        uint32_t addr_fold
        uint16_t port

    ctypedef struct ipvs_sched_svc_t:
        int kind
        uint32_t svc_flags
        int n
        ipvs_sched_dest_t *d
        int rr_pos
        int wrr_cl, wrr_cw, wrr_mw, wrr_di
        int16_t tab[256]
        int32_t *mh_lookup
        uint64_t decisions

    int ipvs_sched_schedule(ipvs_sched_svc_t *s, uint32_t fold,
                            uint16_t port, uint32_t dfold)
    void ipvs_sched_count(ipvs_sched_svc_t *s, int i, int how)
    uint32_t ipvs_sched_addr_fold(const uint8_t *a, int af)
    void ipvs_sched_wrr_init(ipvs_sched_svc_t *s)
    void ipvs_sched_wrr_changed(ipvs_sched_svc_t *s)
    void ipvs_sched_sh_build(ipvs_sched_svc_t *s)
    void ipvs_sched_dh_build(ipvs_sched_svc_t *s)
    int ipvs_sched_mh_build(ipvs_sched_svc_t *s, int32_t *scratch,
                            uint8_t *used)


cdef class BatchScheduler:
    cdef ipvs_sched_svc_t s
    cdef ipvs_sched_dest_t *rows
    cdef int32_t *lookup
    cdef readonly list dests
    cdef readonly str name
    cdef object svc
    cdef int _build(self) except -1
