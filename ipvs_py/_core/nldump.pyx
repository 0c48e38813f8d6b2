# cython: language_level=3, boundscheck=False, wraparound=False
"""Many generic-netlink dumps in one call, without the GIL.

Reading a kernel's IPVS configuration takes one dump per service:
IPVS_CMD_GET_DEST names a service, and no command lists every
destination.  For 2,000 services that is 2,000 dumps of three system
calls each.  Driven from Python they cost 1.34-1.44 s in the TCG guest;
the same loop in C 0.25-0.26 s (a throw-away C harness, one boot).

The receive size matters as much: netlink sizes a dump's buffers after
the largest recv(2) the socket has seen (``max_recvmsg_len``, capped at
32 KiB), so a socket read with a 1 MiB buffer makes the kernel allocate
32 KiB per dump part.  Reading with one page brought a 4-dest dump from
130 to 76 us in the guest (same harness, 2,000 dumps of 4 dests).  Dumps
are read here with ``bufsize`` bytes (default 4096) and ``MSG_TRUNC``: a
part larger than that is an error, never a silent truncation.

Replies come back raw (the netlink messages of each dump, concatenated,
without its DONE): decoding is ``nlattr``'s and ``cfgdigest``'s job.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport errno, EINTR, EMSGSIZE, EPROTO, ENOMEM
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy

import os

cdef extern from "sys/socket.h" nogil:
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    int MSG_TRUNC

cdef enum:
    NLMSG_HDRLEN = 16
    GENL_HDRLEN = 4
    NLM_F_REQUEST = 1
    NLM_F_DUMP = 0x300
    NLMSG_ERROR = 2
    NLMSG_DONE = 3
    MAX_ATTRS = 65535 - NLMSG_HDRLEN - GENL_HDRLEN

#: The smallest and largest receive sizes accepted: below 1 KiB a single
#: IPVS message could not fit; 64 KiB is far above the kernel's 32 KiB cap.
MIN_BUFSIZE, MAX_BUFSIZE = 1024, 65536


cdef struct _Out:
    uint8_t *data
    size_t len
    size_t cap


cdef int _append(_Out *out, const uint8_t *p, size_t n) noexcept nogil:
    cdef size_t cap = out.cap if out.cap else 65536
    cdef uint8_t *grown
    while out.len + n > cap:
        cap *= 2
    if cap != out.cap:
        grown = <uint8_t *>realloc(out.data, cap)
        if grown == NULL:
            return ENOMEM
        out.data, out.cap = grown, cap
    memcpy(out.data + out.len, p, n)
    out.len += n
    return 0


cdef inline void _put16(uint8_t *p, uint16_t v) noexcept nogil:
    memcpy(p, &v, 2)


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)


cdef inline uint32_t _get32(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef int _dump_one(int fd, uint16_t family, uint8_t cmd, uint8_t version,
                   const uint8_t *attrs, size_t alen, uint32_t seq,
                   uint8_t *req, uint8_t *rbuf, size_t bufsize,
                   _Out *out) noexcept nogil:
    """One dump; its data messages are appended to ``out``.  Returns 0 or a
    positive errno (the kernel's, or the socket's)."""
    cdef size_t total = NLMSG_HDRLEN + GENL_HDRLEN + alen
    cdef ssize_t n
    cdef size_t pos, mlen
    cdef uint16_t mtype
    cdef int32_t code
    cdef int err
    _put32(req, <uint32_t>total)
    _put16(req + 4, family)
    _put16(req + 6, NLM_F_REQUEST | NLM_F_DUMP)
    _put32(req + 8, seq)
    _put32(req + 12, 0)
    req[16], req[17], req[18], req[19] = cmd, version, 0, 0
    memcpy(req + NLMSG_HDRLEN + GENL_HDRLEN, attrs, alen)
    while send(fd, req, total, 0) < 0:
        if errno != EINTR:
            return errno
    while True:
        n = recv(fd, rbuf, bufsize, MSG_TRUNC)
        if n < 0:
            if errno == EINTR:
                continue
            return errno
        if <size_t>n > bufsize:
            return EMSGSIZE            # a part larger than bufsize: lost
        pos = 0
        while pos + NLMSG_HDRLEN <= <size_t>n:
            mlen = _get32(rbuf + pos)
            if mlen < NLMSG_HDRLEN or pos + mlen > <size_t>n:
                return EPROTO
            memcpy(&mtype, rbuf + pos + 4, 2)
            if _get32(rbuf + pos + 8) == seq:
                if mtype == NLMSG_DONE or mtype == NLMSG_ERROR:
                    # both carry an int: 0, or minus the errno
                    if mlen < NLMSG_HDRLEN + 4:
                        return 0 if mtype == NLMSG_DONE else EPROTO
                    memcpy(&code, rbuf + pos + NLMSG_HDRLEN, 4)
                    return -code if code < 0 else 0
                err = _append(out, rbuf + pos, mlen)
                if err:
                    return err
            pos += (mlen + 3) & ~(<size_t>3)


def dump_each(int fd, int family, int cmd, list requests, uint32_t seq,
              int version=1, Py_ssize_t bufsize=4096):
    """Run one dump per entry of ``requests`` (attribute bytes) on netlink
    socket ``fd``, in order; return the raw messages of each dump (bytes,
    DONE left out).

    Dump ``i`` uses sequence number ``seq + i`` (skipping 0).  Raises
    ``OSError(errno)`` with ``dump_index`` set to the failing dump's index
    when the kernel or the socket fails one; the dumps before it were read.
    """
    if not 0 < family <= 0xFFFF:
        raise ValueError(f"bad generic netlink family id {family}")
    if not 0 <= cmd <= 0xFF or not 0 <= version <= 0xFF:
        raise ValueError(f"command {cmd} / version {version} out of range 0..255")
    if not MIN_BUFSIZE <= bufsize <= MAX_BUFSIZE:
        raise ValueError(f"bufsize {bufsize} out of range "
                         f"{MIN_BUFSIZE}..{MAX_BUFSIZE}")
    cdef Py_ssize_t count = len(requests), i, alen, flat_len = 0, longest = 0
    for item in requests:
        if not isinstance(item, bytes):
            raise TypeError(f"requests must be bytes, got {type(item).__name__}")
        alen = PyBytes_GET_SIZE(item)
        if alen > MAX_ATTRS or alen & 3:
            raise ValueError(f"request attributes of {alen} bytes: must be a "
                             f"multiple of 4 and at most {MAX_ATTRS}")
        flat_len += alen
        longest = max(longest, alen)
    # copied out under the GIL: the loop below runs without it, and the
    # caller's list could change meanwhile
    cdef uint8_t *flat = <uint8_t *>malloc(flat_len + 1)
    cdef size_t *spans = <size_t *>malloc((count + 1) * sizeof(size_t))
    cdef uint8_t *req = <uint8_t *>malloc(NLMSG_HDRLEN + GENL_HDRLEN + longest)
    cdef uint8_t *rbuf = <uint8_t *>malloc(bufsize)
    cdef size_t *ends = <size_t *>malloc((count + 1) * sizeof(size_t))
    cdef _Out out
    out.data, out.len, out.cap = NULL, 0, 0
    cdef int err = 0
    cdef Py_ssize_t failed = -1
    cdef uint32_t s = seq
    cdef size_t start
    try:
        if not (flat and spans and req and rbuf and ends):
            raise MemoryError()
        spans[0] = 0
        for i in range(count):
            alen = PyBytes_GET_SIZE(requests[i])
            memcpy(flat + spans[i], PyBytes_AS_STRING(requests[i]), alen)
            spans[i + 1] = spans[i] + alen
        with nogil:
            for i in range(count):
                if s == 0:
                    s = 1
                err = _dump_one(fd, <uint16_t>family, <uint8_t>cmd,
                                <uint8_t>version, flat + spans[i],
                                spans[i + 1] - spans[i], s, req, rbuf,
                                bufsize, &out)
                s += 1
                ends[i] = out.len
                if err:
                    failed = i
                    break
        if err:
            exc = OSError(err, os.strerror(err))
            exc.dump_index = failed
            raise exc
        result = []
        for i in range(count):
            start = ends[i - 1] if i else 0
            result.append(PyBytes_FromStringAndSize(
                <char *>out.data + start, ends[i] - start))
        return result
    finally:
        free(flat)
        free(spans)
        free(req)
        free(rbuf)
        free(ends)
        free(out.data)
