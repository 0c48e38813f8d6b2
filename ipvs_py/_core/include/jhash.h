/*
 * jhash.h - Bob Jenkins' lookup3 hash exactly as include/linux/jhash.h.
 *
 * IPVS keys its service table with jhash_3words/jhash_2words (see
 * ip_vs_svc_hashval in net/netfilter/ipvs/ip_vs_ctl.c).  Byte loads in
 * jhash() are CPU-endian (__get_unaligned_cpu32); the model is an x86-64
 * (little-endian) kernel, so bytes are read little-endian on every host.
 */
#ifndef IPVS_PY_JHASH_H
#define IPVS_PY_JHASH_H

#include <stddef.h>
#include <stdint.h>

#define IPVS_JHASH_INITVAL 0xdeadbeefU

static inline uint32_t ipvs_rol32(uint32_t w, unsigned int s)
{
	return (w << (s & 31)) | (w >> ((-s) & 31));
}

static inline uint32_t ipvs_load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define IPVS_JHASH_MIX(a, b, c)                                          \
	do {                                                             \
		a -= c;  a ^= ipvs_rol32(c, 4);  c += b;                 \
		b -= a;  b ^= ipvs_rol32(a, 6);  a += c;                 \
		c -= b;  c ^= ipvs_rol32(b, 8);  b += a;                 \
		a -= c;  a ^= ipvs_rol32(c, 16); c += b;                 \
		b -= a;  b ^= ipvs_rol32(a, 19); a += c;                 \
		c -= b;  c ^= ipvs_rol32(b, 4);  b += a;                 \
	} while (0)

#define IPVS_JHASH_FINAL(a, b, c)                                        \
	do {                                                             \
		c ^= b; c -= ipvs_rol32(b, 14);                          \
		a ^= c; a -= ipvs_rol32(c, 11);                          \
		b ^= a; b -= ipvs_rol32(a, 25);                          \
		c ^= b; c -= ipvs_rol32(b, 16);                          \
		a ^= c; a -= ipvs_rol32(c, 4);                           \
		b ^= a; b -= ipvs_rol32(a, 14);                          \
		c ^= b; c -= ipvs_rol32(b, 24);                          \
	} while (0)

/* jhash - hash an arbitrary key of `length` bytes. */
static inline uint32_t ipvs_jhash(const uint8_t *k, uint32_t length,
				  uint32_t initval)
{
	uint32_t a, b, c;

	a = b = c = IPVS_JHASH_INITVAL + length + initval;
	while (length > 12) {
		a += ipvs_load_le32(k);
		b += ipvs_load_le32(k + 4);
		c += ipvs_load_le32(k + 8);
		IPVS_JHASH_MIX(a, b, c);
		length -= 12;
		k += 12;
	}
	switch (length) {
	case 12: c += (uint32_t)k[11] << 24; /* fall through */
	case 11: c += (uint32_t)k[10] << 16; /* fall through */
	case 10: c += (uint32_t)k[9] << 8;   /* fall through */
	case 9:  c += k[8];                  /* fall through */
	case 8:  b += (uint32_t)k[7] << 24;  /* fall through */
	case 7:  b += (uint32_t)k[6] << 16;  /* fall through */
	case 6:  b += (uint32_t)k[5] << 8;   /* fall through */
	case 5:  b += k[4];                  /* fall through */
	case 4:  a += (uint32_t)k[3] << 24;  /* fall through */
	case 3:  a += (uint32_t)k[2] << 16;  /* fall through */
	case 2:  a += (uint32_t)k[1] << 8;   /* fall through */
	case 1:  a += k[0];
		 IPVS_JHASH_FINAL(a, b, c);
		 break;
	case 0:  /* nothing left to add */
		 break;
	}
	return c;
}

/* jhash2 - hash an array of `length` u32 words. */
static inline uint32_t ipvs_jhash2(const uint32_t *k, uint32_t length,
				   uint32_t initval)
{
	uint32_t a, b, c;

	a = b = c = IPVS_JHASH_INITVAL + (length << 2) + initval;
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		IPVS_JHASH_MIX(a, b, c);
		length -= 3;
		k += 3;
	}
	switch (length) {
	case 3: c += k[2]; /* fall through */
	case 2: b += k[1]; /* fall through */
	case 1: a += k[0];
		IPVS_JHASH_FINAL(a, b, c);
		break;
	case 0:
		break;
	}
	return c;
}

static inline uint32_t ipvs_jhash_nwords(uint32_t a, uint32_t b, uint32_t c,
					 uint32_t initval)
{
	a += initval;
	b += initval;
	c += initval;
	IPVS_JHASH_FINAL(a, b, c);
	return c;
}

static inline uint32_t ipvs_jhash_3words(uint32_t a, uint32_t b, uint32_t c,
					 uint32_t initval)
{
	return ipvs_jhash_nwords(a, b, c, initval + IPVS_JHASH_INITVAL + (3 << 2));
}

static inline uint32_t ipvs_jhash_2words(uint32_t a, uint32_t b,
					 uint32_t initval)
{
	return ipvs_jhash_nwords(a, b, 0, initval + IPVS_JHASH_INITVAL + (2 << 2));
}

static inline uint32_t ipvs_jhash_1word(uint32_t a, uint32_t initval)
{
	return ipvs_jhash_nwords(a, 0, 0, initval + IPVS_JHASH_INITVAL + (1 << 2));
}

#endif /* IPVS_PY_JHASH_H */
