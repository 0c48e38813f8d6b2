# cython: language_level=3, boundscheck=False, wraparound=False
"""Netlink attribute decoding for IPVS replies, compiled.

Reading a kernel's configuration decodes one nest per service and per
destination: 10,000 nests for a 2,000 x 4 configuration.  In Python that
loop cost 23 us a nest on the dev host and 3.4 s of a 2,000 x 4 read in
the TCG guest, against 0.39 s for the dumps' system calls themselves
(bench/bench_netlink.py), so it is compiled here.  Every function returns
exactly what its twin in ``_pyref_nlattr.py`` returns and raises the same
exception types (tests/core/test_nlattr.py).

Bounds: every read is checked against the nest and the bytes object at
the Python boundary, so no input can make it read outside ``payload``.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr

import socket
import sys

from ._pyref_nlattr import (U8, U16, BE16, U32, ADDR, FLAGS, STR, STATS32,  # noqa: F401
                            STATS64)

cdef extern from "arpa/inet.h" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size)

cdef enum:
    C_U8 = 1
    C_U16 = 2
    C_BE16 = 3
    C_U32 = 4
    C_ADDR = 5
    C_FLAGS = 6
    C_STR = 7
    C_STATS32 = 8
    C_STATS64 = 9
    C_AF_INET = 2
    C_AF_INET6 = 10

assert (U8, U16, BE16, U32, ADDR, FLAGS, STR, STATS32, STATS64) == \
    (C_U8, C_U16, C_BE16, C_U32, C_ADDR, C_FLAGS, C_STR, C_STATS32, C_STATS64)

cdef Py_ssize_t[10] _NEED
_NEED[:] = [0, 1, 2, 2, 4, 0, 8, 0, 0, 0]


cdef object _short(int kind, Py_ssize_t size, Py_ssize_t need):
    return ValueError(f"netlink attribute {kind}: {size} bytes, "
                      f"its type needs {need}")


cdef Py_ssize_t next_attr(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                          int *kind, Py_ssize_t *stop) except -2:
    """The attribute at ``pos``: its type in ``kind``, its end in ``stop``;
    returns the next attribute's offset, or -1 when the nest ends here."""
    cdef uint16_t length
    if pos + 4 > end:
        return -1
    length = u16_at(p + pos)
    kind[0] = u16_at(p + pos + 2)
    if length < 4:
        return -1
    if pos + length > end:
        raise ValueError(f"netlink attribute {kind[0] & 0x3FFF} at offset "
                         f"{pos}: length {length} runs past its nest")
    kind[0] &= 0x3FFF
    stop[0] = pos + length
    return pos + ((length + 3) & ~3)


def decode_stats(bytes payload, Py_ssize_t start, Py_ssize_t end,
                 tuple names, bint wide):
    """A stats nest -> {name: counter} (see ``_pyref_nlattr.decode_stats``)."""
    if not 0 <= start <= end <= PyBytes_GET_SIZE(payload):
        raise ValueError(f"nest [{start}, {end}) outside a "
                         f"{PyBytes_GET_SIZE(payload)}-byte message")
    return _stats(<const uint8_t *>PyBytes_AS_STRING(payload), start, end,
                  names, wide)


cdef dict _stats(const uint8_t *p, Py_ssize_t start, Py_ssize_t end,
                 tuple names, bint wide):
    cdef dict out = {}
    cdef Py_ssize_t pos = start, nxt, stop, size = 8 if wide else 4
    cdef int kind
    cdef object name
    while True:
        nxt = next_attr(p, pos, end, &kind, &stop)
        if nxt < 0:
            return out
        if kind < len(names):
            name = names[kind]
            if name is not None:
                if stop - pos - 4 < size:
                    raise _short(kind, stop - pos - 4, size)
                out[name] = u64_at(p + pos + 4) if wide else u32_at(p + pos + 4)
        pos = nxt


def decode_nest(bytes payload, Py_ssize_t start, Py_ssize_t end, tuple table,
                int af_attr, bint stats, tuple stats_names):
    """One IPVS service/dest nest -> dict (see ``_pyref_nlattr.decode_nest``)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
    if not 0 <= start <= end <= n:
        raise ValueError(f"nest [{start}, {end}) outside a {n}-byte message")
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(payload)
    cdef dict out = {}
    cdef Py_ssize_t pos = start, nxt, stop, a, size, addr_at = -1, addr_end = 0
    cdef int kind, code, addr_kind = 0
    cdef long af = C_AF_INET
    cdef object entry, name, value, addr_name = None
    cdef const uint8_t *nul
    cdef char text[64]
    while True:
        nxt = next_attr(p, pos, end, &kind, &stop)
        if nxt < 0:
            break
        a = pos + 4
        size = stop - a
        pos = nxt
        if kind >= len(table):
            continue
        entry = table[kind]
        if entry is None:
            continue
        name, code = entry
        if code < 1 or code > 9:
            raise ValueError(f"unknown decode code {code} for attribute {kind}")
        if size < _NEED[code]:
            raise _short(kind, size, _NEED[code])
        if code <= C_U32:
            if code == C_U8:
                value = p[a]
            elif code == C_U16:
                value = u16_at(p + a)
            elif code == C_BE16:
                value = (p[a] << 8) | p[a + 1]
            else:
                value = u32_at(p + a)
            out[name] = value
            if kind == af_attr:
                af = value
        elif code == C_ADDR:
            addr_kind, addr_name, addr_at, addr_end = kind, name, a, stop
        elif code == C_FLAGS:
            out["flags"] = u32_at(p + a)
            out["flags_mask"] = u32_at(p + a + 4)
        elif code == C_STR:
            nul = <const uint8_t *>memchr(p + a, 0, size)
            out[name] = (<bytes>payload[a:(nul - p) if nul != NULL else stop]).decode()
        elif stats:
            out[name] = _stats(p, a, stop, stats_names, code == C_STATS64)
    if addr_at >= 0:
        size = 16 if af == C_AF_INET6 else 4
        if addr_end - addr_at < size:
            raise _short(addr_kind, addr_end - addr_at, size)
        inet_ntop(C_AF_INET6 if af == C_AF_INET6 else C_AF_INET, p + addr_at,
                  text, sizeof(text))
        out[addr_name] = text.decode("ascii")
    if af != C_AF_INET6 and "netmask" in out:
        value = out["netmask"]
        out["netmask"] = socket.inet_ntoa((<uint32_t>value).to_bytes(4, sys.byteorder))
    return out
