/*
 * goldenhash.h - multiplicative hashes of include/linux/hash.h.
 *
 * ip_vs_sh and ip_vs_dh pick one of 256 buckets with hash_32(), so these
 * must match the kernel's constants exactly (GOLDEN_RATIO_32/64 were
 * chosen in commit 689de1d6ca95 "Pick better hash multipliers").
 */
#ifndef IPVS_PY_GOLDENHASH_H
#define IPVS_PY_GOLDENHASH_H

#include <stdint.h>

#define IPVS_GOLDEN_RATIO_32 0x61C88647U
#define IPVS_GOLDEN_RATIO_64 0x61C8864680B583EBULL

static inline uint32_t ipvs___hash_32(uint32_t val)
{
	return val * IPVS_GOLDEN_RATIO_32;
}

/* bits must be 1..32; callers at the Python boundary check it. */
static inline uint32_t ipvs_hash_32(uint32_t val, unsigned int bits)
{
	return ipvs___hash_32(val) >> (32 - bits);
}

/* bits must be 1..64 (64-bit kernel: hash_64_generic). */
static inline uint64_t ipvs_hash_64(uint64_t val, unsigned int bits)
{
	return (val * IPVS_GOLDEN_RATIO_64) >> (64 - bits);
}

#endif /* IPVS_PY_GOLDENHASH_H */
