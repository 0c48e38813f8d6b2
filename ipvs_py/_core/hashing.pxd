# cython: language_level=3
"""C-level interface to the kernel-exact hash functions.

Other Cython modules ``cimport`` these to hash without the GIL::

    from ipvs_py._core.hashing cimport ipvs_siphash_key_t, ipvs_siphash_2u64

Every function is a static inline from ``include/*.h``; nothing here touches
Python objects, so the whole block is ``nogil``.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef extern from "siphash.h" nogil:
    ctypedef struct ipvs_siphash_key_t:
        uint64_t key[2]

    uint64_t ipvs_siphash(const uint8_t *data, size_t length,
                          const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_1u64(uint64_t a, const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_2u64(uint64_t a, uint64_t b,
                               const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_3u64(uint64_t a, uint64_t b, uint64_t c,
                               const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_4u64(uint64_t a, uint64_t b, uint64_t c, uint64_t d,
                               const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_1u32(uint32_t a, const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_2u32(uint32_t a, uint32_t b,
                               const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_3u32(uint32_t a, uint32_t b, uint32_t c,
                               const ipvs_siphash_key_t *key)
    uint64_t ipvs_siphash_4u32(uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                               const ipvs_siphash_key_t *key)

    uint32_t ipvs_hsiphash(const uint8_t *data, size_t length,
                           const ipvs_siphash_key_t *key)
    uint32_t ipvs_hsiphash_1u32(uint32_t a, const ipvs_siphash_key_t *key)
    uint32_t ipvs_hsiphash_2u32(uint32_t a, uint32_t b,
                                const ipvs_siphash_key_t *key)
    uint32_t ipvs_hsiphash_3u32(uint32_t a, uint32_t b, uint32_t c,
                                const ipvs_siphash_key_t *key)
    uint32_t ipvs_hsiphash_4u32(uint32_t a, uint32_t b, uint32_t c,
                                uint32_t d, const ipvs_siphash_key_t *key)


cdef extern from "jhash.h" nogil:
    uint32_t IPVS_JHASH_INITVAL
    uint32_t ipvs_jhash(const uint8_t *k, uint32_t length, uint32_t initval)
    uint32_t ipvs_jhash2(const uint32_t *k, uint32_t length, uint32_t initval)
    uint32_t ipvs_jhash_1word(uint32_t a, uint32_t initval)
    uint32_t ipvs_jhash_2words(uint32_t a, uint32_t b, uint32_t initval)
    uint32_t ipvs_jhash_3words(uint32_t a, uint32_t b, uint32_t c,
                               uint32_t initval)


cdef extern from "goldenhash.h" nogil:
    uint32_t IPVS_GOLDEN_RATIO_32
    uint64_t IPVS_GOLDEN_RATIO_64
    uint32_t ipvs_hash_32(uint32_t val, unsigned int bits)
    uint64_t ipvs_hash_64(uint64_t val, unsigned int bits)


# Python-boundary helpers shared with other core modules.
cdef int key_from_object(object key, ipvs_siphash_key_t *out) except -1
