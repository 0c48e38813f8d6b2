/*
 * siphash.h - SipHash-2-4 and the kernel's 64-bit "hsiphash", bit-for-bit
 * as Linux computes them (lib/siphash.c, include/linux/siphash.h).
 *
 * SipHash (Aumasson & Bernstein, 2012) is a keyed PRF over short inputs.
 * The kernel offers it as:
 *   siphash()          - SipHash-2-4 over bytes, 128-bit key, 64-bit result;
 *   siphash_Nu64/Nu32  - the same function over little-endian words, so that
 *                        siphash_2u64(a, b) == siphash(le64(a) || le64(b));
 *   hsiphash()         - on 64-bit machines *SipHash-1-3* truncated to u32
 *                        ("we make HalfSipHash1-3 actually be SipHash1-3,
 *                        for performance reasons"); this is what ip_vs_mh's
 *                        lookup table and other hash tables use.
 * The model runs on x86-64, so only the 64-bit hsiphash is provided.
 *
 * All functions are static inline, pure, and safe without the GIL.
 */
#ifndef IPVS_PY_SIPHASH_H
#define IPVS_PY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct { uint64_t key[2]; } ipvs_siphash_key_t;

static inline uint64_t ipvs_rol64(uint64_t w, unsigned int s)
{
	return (w << (s & 63)) | (w >> ((-s) & 63));
}

/* Little-endian load that is safe at any alignment (memcpy compiles to one
 * mov on x86-64; the kernel uses get_unaligned_le64 for the same reason). */
static inline uint64_t ipvs_load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

#define IPVS_SIPROUND                                                   \
	do {                                                            \
		v0 += v1; v1 = ipvs_rol64(v1, 13); v1 ^= v0;            \
		v0 = ipvs_rol64(v0, 32);                                \
		v2 += v3; v3 = ipvs_rol64(v3, 16); v3 ^= v2;            \
		v0 += v3; v3 = ipvs_rol64(v3, 21); v3 ^= v0;            \
		v2 += v1; v1 = ipvs_rol64(v1, 17); v1 ^= v2;            \
		v2 = ipvs_rol64(v2, 32);                                \
	} while (0)

#define IPVS_SIP_PREAMBLE(len)                                          \
	uint64_t v0 = 0x736f6d6570736575ULL;                            \
	uint64_t v1 = 0x646f72616e646f6dULL;                            \
	uint64_t v2 = 0x6c7967656e657261ULL;                            \
	uint64_t v3 = 0x7465646279746573ULL;                            \
	uint64_t b = ((uint64_t)(len)) << 56;                           \
	v3 ^= key->key[1];                                              \
	v2 ^= key->key[0];                                              \
	v1 ^= key->key[1];                                              \
	v0 ^= key->key[0];

/* One message word with c compression rounds (2 for SipHash-2-4, 1 for
 * the 64-bit hsiphash). */
#define IPVS_SIP_WORD(m, c)                                             \
	do {                                                            \
		uint64_t m_ = (m);                                      \
		v3 ^= m_;                                               \
		for (int r_ = 0; r_ < (c); r_++)                        \
			IPVS_SIPROUND;                                  \
		v0 ^= m_;                                               \
	} while (0)

/* Finalisation with d rounds (4 for SipHash-2-4, 3 for hsiphash). */
#define IPVS_SIP_FINISH(c, d)                                           \
	do {                                                            \
		v3 ^= b;                                                \
		for (int r_ = 0; r_ < (c); r_++)                        \
			IPVS_SIPROUND;                                  \
		v0 ^= b;                                                \
		v2 ^= 0xff;                                             \
		for (int r_ = 0; r_ < (d); r_++)                        \
			IPVS_SIPROUND;                                  \
	} while (0)

/* Bytes, SipHash-c-d; the tail is packed into b as lib/siphash.c does. */
static inline uint64_t ipvs_sip_bytes(const uint8_t *data, size_t len,
				      const ipvs_siphash_key_t *key,
				      int c, int d)
{
	const uint8_t *end = data + len - (len % 8);
	const unsigned int left = len & 7;
	IPVS_SIP_PREAMBLE(len)
	for (; data != end; data += 8)
		IPVS_SIP_WORD(ipvs_load_le64(data), c);
	switch (left) {
	case 7: b |= ((uint64_t)end[6]) << 48; /* fall through */
	case 6: b |= ((uint64_t)end[5]) << 40; /* fall through */
	case 5: b |= ((uint64_t)end[4]) << 32; /* fall through */
	case 4: b |= ((uint64_t)end[3]) << 24; /* fall through */
	case 3: b |= ((uint64_t)end[2]) << 16; /* fall through */
	case 2: b |= ((uint64_t)end[1]) << 8;  /* fall through */
	case 1: b |= end[0]; break;
	case 0: break;
	}
	IPVS_SIP_FINISH(c, d);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

/* ---- SipHash-2-4 (lib/siphash.c: siphash, siphash_*u64, siphash_*u32) */

static inline uint64_t ipvs_siphash(const uint8_t *data, size_t len,
				    const ipvs_siphash_key_t *key)
{
	return ipvs_sip_bytes(data, len, key, 2, 4);
}

static inline uint64_t ipvs_siphash_1u64(uint64_t first,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(8)
	IPVS_SIP_WORD(first, 2);
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

static inline uint64_t ipvs_siphash_2u64(uint64_t first, uint64_t second,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(16)
	IPVS_SIP_WORD(first, 2);
	IPVS_SIP_WORD(second, 2);
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

static inline uint64_t ipvs_siphash_3u64(uint64_t first, uint64_t second,
					 uint64_t third,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(24)
	IPVS_SIP_WORD(first, 2);
	IPVS_SIP_WORD(second, 2);
	IPVS_SIP_WORD(third, 2);
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

static inline uint64_t ipvs_siphash_4u64(uint64_t first, uint64_t second,
					 uint64_t third, uint64_t fourth,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(32)
	IPVS_SIP_WORD(first, 2);
	IPVS_SIP_WORD(second, 2);
	IPVS_SIP_WORD(third, 2);
	IPVS_SIP_WORD(fourth, 2);
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

static inline uint64_t ipvs_siphash_1u32(uint32_t first,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(4)
	b |= first;
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

/* include/linux/siphash.h: siphash_2u32 is siphash_1u64 of the pair. */
static inline uint64_t ipvs_siphash_2u32(uint32_t first, uint32_t second,
					 const ipvs_siphash_key_t *key)
{
	return ipvs_siphash_1u64((uint64_t)second << 32 | first, key);
}

static inline uint64_t ipvs_siphash_3u32(uint32_t first, uint32_t second,
					 uint32_t third,
					 const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(12)
	IPVS_SIP_WORD((uint64_t)second << 32 | first, 2);
	b |= third;
	IPVS_SIP_FINISH(2, 4);
	return (v0 ^ v1) ^ (v2 ^ v3);
}

static inline uint64_t ipvs_siphash_4u32(uint32_t first, uint32_t second,
					 uint32_t third, uint32_t fourth,
					 const ipvs_siphash_key_t *key)
{
	return ipvs_siphash_2u64((uint64_t)second << 32 | first,
				 (uint64_t)fourth << 32 | third, key);
}

/* ---- hsiphash on 64-bit: SipHash-1-3, truncated to u32 ---- */

static inline uint32_t ipvs_hsiphash(const uint8_t *data, size_t len,
				     const ipvs_siphash_key_t *key)
{
	return (uint32_t)ipvs_sip_bytes(data, len, key, 1, 3);
}

static inline uint32_t ipvs_hsiphash_1u32(uint32_t first,
					  const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(4)
	b |= first;
	IPVS_SIP_FINISH(1, 3);
	return (uint32_t)((v0 ^ v1) ^ (v2 ^ v3));
}

static inline uint32_t ipvs_hsiphash_2u32(uint32_t first, uint32_t second,
					  const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(8)
	IPVS_SIP_WORD((uint64_t)second << 32 | first, 1);
	IPVS_SIP_FINISH(1, 3);
	return (uint32_t)((v0 ^ v1) ^ (v2 ^ v3));
}

static inline uint32_t ipvs_hsiphash_3u32(uint32_t first, uint32_t second,
					  uint32_t third,
					  const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(12)
	IPVS_SIP_WORD((uint64_t)second << 32 | first, 1);
	b |= third;
	IPVS_SIP_FINISH(1, 3);
	return (uint32_t)((v0 ^ v1) ^ (v2 ^ v3));
}

static inline uint32_t ipvs_hsiphash_4u32(uint32_t first, uint32_t second,
					  uint32_t third, uint32_t fourth,
					  const ipvs_siphash_key_t *key)
{
	IPVS_SIP_PREAMBLE(16)
	IPVS_SIP_WORD((uint64_t)second << 32 | first, 1);
	IPVS_SIP_WORD((uint64_t)fourth << 32 | third, 1);
	IPVS_SIP_FINISH(1, 3);
	return (uint32_t)((v0 ^ v1) ^ (v2 ^ v3));
}

#endif /* IPVS_PY_SIPHASH_H */
