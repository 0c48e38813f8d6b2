/*
 * hashloop.c - the "plain C loop" baseline of bench_hashing.py.
 *
 * The same static inline functions as the Cython core (ipvs_py/_core/
 * include), called in the tightest loop C allows.  bench_hashing.py
 * compiles this with the flags setup.py gives the extensions, so the ratio
 * batch/C measures only what the Cython batch wrapper adds.
 */
#include <stddef.h>
#include <stdint.h>

#include "siphash.h"
#include "jhash.h"
#include "goldenhash.h"

void loop_siphash_2u64(const uint64_t *w, size_t n, const uint64_t *key,
		       uint64_t *out)
{
	ipvs_siphash_key_t k = { { key[0], key[1] } };
	for (size_t i = 0; i < n; i++)
		out[i] = ipvs_siphash_2u64(w[2 * i], w[2 * i + 1], &k);
}

void loop_siphash_4u64(const uint64_t *w, size_t n, const uint64_t *key,
		       uint64_t *out)
{
	ipvs_siphash_key_t k = { { key[0], key[1] } };
	for (size_t i = 0; i < n; i++)
		out[i] = ipvs_siphash_4u64(w[4 * i], w[4 * i + 1], w[4 * i + 2],
					   w[4 * i + 3], &k);
}

void loop_hsiphash_3u32(const uint32_t *w, size_t n, const uint64_t *key,
			uint32_t *out)
{
	ipvs_siphash_key_t k = { { key[0], key[1] } };
	for (size_t i = 0; i < n; i++)
		out[i] = ipvs_hsiphash_3u32(w[3 * i], w[3 * i + 1], w[3 * i + 2],
					    &k);
}

void loop_jhash_3words(const uint32_t *w, size_t n, uint32_t initval,
		       uint32_t *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = ipvs_jhash_3words(w[3 * i], w[3 * i + 1], w[3 * i + 2],
					   initval);
}

void loop_hash_32(const uint32_t *w, size_t n, unsigned int bits,
		  uint32_t *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = ipvs_hash_32(w[i], bits);
}
