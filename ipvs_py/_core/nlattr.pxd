# Shared by the modules that read netlink attributes (nlattr, cfgdigest).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


# memcpy, not a cast: attributes are only 4-byte aligned, u64 counters not
# even that (include/uapi/linux/netlink.h, NLA_ALIGNTO)
cdef inline uint16_t u16_at(const uint8_t *p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef inline uint32_t u32_at(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t u64_at(const uint8_t *p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef Py_ssize_t next_attr(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                          int *kind, Py_ssize_t *stop) except -2
