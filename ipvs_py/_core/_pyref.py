"""Pure-Python reference of the compiled core, for the tests.

Written straight from the kernel sources (``lib/siphash.c``,
``include/linux/jhash.h``, ``include/linux/hash.h``) with no attempt at
speed, so that the Cython core can be checked against an independent
transcription.  It raises the same exception types for bad input.  It is
not a fallback: ``ipvs_py`` never imports it unless ``IPVS_PY_PURE=1``.
"""
import numpy as np

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
GOLDEN_RATIO_32 = 0x61C88647
GOLDEN_RATIO_64 = 0x61C8864680B583EB
JHASH_INITVAL = 0xDEADBEEF


# ------------------------------------------------------------------ checks

def _word(value, name, bits):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not 0 <= v < (1 << bits):
        raise ValueError(f"{name} must be a u{bits} (0..2**{bits}-1), got {v}")
    return v


def _bytes(data, name):
    if isinstance(data, str):
        raise TypeError(f"{name} must be bytes-like, not str")
    try:
        return memoryview(data).cast("B").tobytes()
    except TypeError as exc:
        raise TypeError(f"{name} must be bytes-like, not "
                        f"{type(data).__name__} ({exc})") from None


def _key(key):
    try:
        raw = _bytes(key, "key")
    except TypeError:
        raise TypeError(f"key must be 16 bytes (bytes-like), "
                        f"not {type(key).__name__}") from None
    if len(raw) != 16:
        raise ValueError(f"key must be 16 bytes, got {len(raw)}")
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def _bits(bits, maximum):
    if isinstance(bits, bool) or not hasattr(bits, "__index__"):
        raise TypeError(f"bits must be an int, not {type(bits).__name__}")
    b = bits.__index__()
    if not 1 <= b <= maximum:
        raise ValueError(f"bits must be in 1..{maximum}, got {b}")
    return b


# ----------------------------------------------------------------- SipHash

def _rol64(w, s):
    return ((w << s) | (w >> (64 - s))) & M64


class _Sip:
    """SipHash state: ``c`` compression rounds, ``d`` finalisation rounds."""

    def __init__(self, key, length, c, d):
        k0, k1 = _key(key)
        self.v = [0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1,
                  0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1]
        self.b = (length << 56) & M64
        self.c, self.d = c, d

    def _round(self):
        v0, v1, v2, v3 = self.v
        v0 = (v0 + v1) & M64; v1 = _rol64(v1, 13) ^ v0; v0 = _rol64(v0, 32)
        v2 = (v2 + v3) & M64; v3 = _rol64(v3, 16) ^ v2
        v0 = (v0 + v3) & M64; v3 = _rol64(v3, 21) ^ v0
        v2 = (v2 + v1) & M64; v1 = _rol64(v1, 17) ^ v2; v2 = _rol64(v2, 32)
        self.v = [v0, v1, v2, v3]

    def word(self, m):
        self.v[3] ^= m
        for _ in range(self.c):
            self._round()
        self.v[0] ^= m

    def finish(self):
        self.v[3] ^= self.b
        for _ in range(self.c):
            self._round()
        self.v[0] ^= self.b
        self.v[2] ^= 0xFF
        for _ in range(self.d):
            self._round()
        v0, v1, v2, v3 = self.v
        return v0 ^ v1 ^ v2 ^ v3


def _sip_bytes(data, key, c, d):
    raw = _bytes(data, "data")
    s = _Sip(key, len(raw), c, d)
    whole = len(raw) - len(raw) % 8
    for off in range(0, whole, 8):
        s.word(int.from_bytes(raw[off:off + 8], "little"))
    s.b |= int.from_bytes(raw[whole:], "little")
    return s.finish()


def _sip_words(key, length, words, c, d, tail=None):
    s = _Sip(key, length, c, d)
    for w in words:
        s.word(w)
    if tail is not None:
        s.b |= tail
    return s.finish()


def siphash(data, key):
    """SipHash-2-4 of ``data`` (bytes) under a 16-byte key."""
    _key(key)
    return _sip_bytes(data, key, 2, 4)


def _u64s(names, values):
    return [_word(v, n, 64) for n, v in zip(names, values)]


def _u32s(names, values):
    return [_word(v, n, 32) for n, v in zip(names, values)]


_NAMES = ("first", "second", "third", "fourth")


def siphash_1u64(first, key):
    """SipHash-2-4 of one u64."""
    w = _u64s(_NAMES, [first]); _key(key)
    return _sip_words(key, 8, w, 2, 4)


def siphash_2u64(first, second, key):
    """SipHash-2-4 of two u64."""
    w = _u64s(_NAMES, [first, second]); _key(key)
    return _sip_words(key, 16, w, 2, 4)


def siphash_3u64(first, second, third, key):
    """SipHash-2-4 of three u64."""
    w = _u64s(_NAMES, [first, second, third]); _key(key)
    return _sip_words(key, 24, w, 2, 4)


def siphash_4u64(first, second, third, fourth, key):
    """SipHash-2-4 of four u64."""
    w = _u64s(_NAMES, [first, second, third, fourth]); _key(key)
    return _sip_words(key, 32, w, 2, 4)


def _u32_bytes(words):
    return b"".join(w.to_bytes(4, "little") for w in words)


def siphash_1u32(first, key):
    """SipHash-2-4 of one u32."""
    w = _u32s(_NAMES, [first]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 2, 4)


def siphash_2u32(first, second, key):
    """SipHash-2-4 of two u32."""
    w = _u32s(_NAMES, [first, second]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 2, 4)


def siphash_3u32(first, second, third, key):
    """SipHash-2-4 of three u32."""
    w = _u32s(_NAMES, [first, second, third]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 2, 4)


def siphash_4u32(first, second, third, fourth, key):
    """SipHash-2-4 of four u32."""
    w = _u32s(_NAMES, [first, second, third, fourth]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 2, 4)


def hsiphash(data, key):
    """64-bit kernel hsiphash: SipHash-1-3 truncated to u32."""
    _key(key)
    return _sip_bytes(data, key, 1, 3) & M32


def hsiphash_1u32(first, key):
    """hsiphash of one u32."""
    w = _u32s(_NAMES, [first]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 1, 3) & M32


def hsiphash_2u32(first, second, key):
    """hsiphash of two u32."""
    w = _u32s(_NAMES, [first, second]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 1, 3) & M32


def hsiphash_3u32(first, second, third, key):
    """hsiphash of three u32."""
    w = _u32s(_NAMES, [first, second, third]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 1, 3) & M32


def hsiphash_4u32(first, second, third, fourth, key):
    """hsiphash of four u32."""
    w = _u32s(_NAMES, [first, second, third, fourth]); _key(key)
    return _sip_bytes(_u32_bytes(w), key, 1, 3) & M32


# ------------------------------------------------------------------- jhash

def _rol32(w, s):
    return ((w << s) | (w >> (32 - s))) & M32


def _mix(a, b, c):
    a = (a - c) & M32; a ^= _rol32(c, 4); c = (c + b) & M32
    b = (b - a) & M32; b ^= _rol32(a, 6); a = (a + c) & M32
    c = (c - b) & M32; c ^= _rol32(b, 8); b = (b + a) & M32
    a = (a - c) & M32; a ^= _rol32(c, 16); c = (c + b) & M32
    b = (b - a) & M32; b ^= _rol32(a, 19); a = (a + c) & M32
    c = (c - b) & M32; c ^= _rol32(b, 4); b = (b + a) & M32
    return a, b, c


def _final(a, b, c):
    c ^= b; c = (c - _rol32(b, 14)) & M32
    a ^= c; a = (a - _rol32(c, 11)) & M32
    b ^= a; b = (b - _rol32(a, 25)) & M32
    c ^= b; c = (c - _rol32(b, 16)) & M32
    a ^= c; a = (a - _rol32(c, 4)) & M32
    b ^= a; b = (b - _rol32(a, 14)) & M32
    c ^= b; c = (c - _rol32(b, 24)) & M32
    return a, b, c


def jhash(data, initval=0):
    """jhash (lookup3) of bytes, little-endian loads."""
    iv = _word(initval, "initval", 32)
    k = _bytes(data, "data")
    n = len(k)
    a = b = c = (JHASH_INITVAL + n + iv) & M32
    off = 0
    while n > 12:
        a = (a + int.from_bytes(k[off:off + 4], "little")) & M32
        b = (b + int.from_bytes(k[off + 4:off + 8], "little")) & M32
        c = (c + int.from_bytes(k[off + 8:off + 12], "little")) & M32
        a, b, c = _mix(a, b, c)
        n -= 12
        off += 12
    if n == 0:
        return c
    tail = k[off:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & M32
    b = (b + int.from_bytes(tail[4:8], "little")) & M32
    c = (c + int.from_bytes(tail[8:12], "little")) & M32
    return _final(a, b, c)[2]


def jhash2(words, initval=0):
    """jhash2 over a sequence of u32 words."""
    iv = _word(initval, "initval", 32)
    if isinstance(words, (str, bytes, bytearray)) or not hasattr(words, "__len__"):
        raise TypeError("words must be a sequence of u32 ints, "
                        f"not {type(words).__name__}")
    k = [_word(w, f"words[{i}]", 32) for i, w in enumerate(words)]
    n = len(k)
    a = b = c = (JHASH_INITVAL + (n << 2) + iv) & M32
    off = 0
    while n > 3:
        a = (a + k[off]) & M32
        b = (b + k[off + 1]) & M32
        c = (c + k[off + 2]) & M32
        a, b, c = _mix(a, b, c)
        n -= 3
        off += 3
    if n == 0:
        return c
    rest = k[off:] + [0] * (3 - n)
    return _final((a + rest[0]) & M32, (b + rest[1]) & M32,
                  (c + rest[2]) & M32)[2]


def _nwords(a, b, c, initval):
    return _final((a + initval) & M32, (b + initval) & M32,
                  (c + initval) & M32)[2]


def jhash_1word(a, initval=0):
    """jhash_1word."""
    a = _word(a, "a", 32); iv = _word(initval, "initval", 32)
    return _nwords(a, 0, 0, (iv + JHASH_INITVAL + (1 << 2)) & M32)


def jhash_2words(a, b, initval=0):
    """jhash_2words."""
    a = _word(a, "a", 32); b = _word(b, "b", 32)
    iv = _word(initval, "initval", 32)
    return _nwords(a, b, 0, (iv + JHASH_INITVAL + (2 << 2)) & M32)


def jhash_3words(a, b, c, initval=0):
    """jhash_3words."""
    a = _word(a, "a", 32); b = _word(b, "b", 32); c = _word(c, "c", 32)
    iv = _word(initval, "initval", 32)
    return _nwords(a, b, c, (iv + JHASH_INITVAL + (3 << 2)) & M32)


# ------------------------------------------------------- golden-ratio hash

def hash_32(val, bits=32):
    """hash_32 of linux/hash.h."""
    v = _word(val, "val", 32)
    return ((v * GOLDEN_RATIO_32) & M32) >> (32 - _bits(bits, 32))


def hash_64(val, bits=64):
    """hash_64 of linux/hash.h (64-bit kernel)."""
    v = _word(val, "val", 64)
    return ((v * GOLDEN_RATIO_64) & M64) >> (64 - _bits(bits, 64))


# ----------------------------------------------------------------- batches

def _rows(words, dtype, name, lo, hi):
    try:
        arr = np.asarray(words)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name} must be an array of words: {exc}") from None
    if arr.dtype != dtype:
        if arr.dtype.kind not in "ui" or arr.size and (
                arr.min() < 0 or arr.max() > np.iinfo(dtype).max):
            raise ValueError(f"{name} must hold {np.dtype(dtype).name} words "
                             f"(got dtype {arr.dtype})")
        arr = arr.astype(dtype)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got {arr.ndim}-D")
    if not lo <= arr.shape[1] <= hi:
        raise ValueError(f"{name} must have {lo}..{hi} columns "
                         f"(words per key), got {arr.shape[1]}")
    return [[int(x) for x in row] for row in arr]


def _emit(values, dtype, out):
    res = np.array(values, dtype=dtype)
    if out is None:
        return res
    if not isinstance(out, np.ndarray) or out.dtype != dtype or \
            out.shape != res.shape or not out.flags.c_contiguous or \
            not out.flags.writeable:
        raise ValueError(f"out must be a writable C-contiguous "
                         f"{np.dtype(dtype).name} array of shape ({len(res)},)")
    out[:] = res
    return out


_SIP64 = {1: siphash_1u64, 2: siphash_2u64, 3: siphash_3u64, 4: siphash_4u64}
_SIP32 = {1: siphash_1u32, 2: siphash_2u32, 3: siphash_3u32, 4: siphash_4u32}
_HSIP32 = {1: hsiphash_1u32, 2: hsiphash_2u32, 3: hsiphash_3u32,
           4: hsiphash_4u32}
_JWORDS = {1: jhash_1word, 2: jhash_2words, 3: jhash_3words}


def siphash_u64_batch(words, key, out=None):
    """Row-wise siphash_Nu64."""
    _key(key)
    rows = _rows(words, np.uint64, "words", 1, 4)
    return _emit([_SIP64[len(r)](*r, key) for r in rows], np.uint64, out)


def siphash_u32_batch(words, key, out=None):
    """Row-wise siphash_Nu32."""
    _key(key)
    rows = _rows(words, np.uint32, "words", 1, 4)
    return _emit([_SIP32[len(r)](*r, key) for r in rows], np.uint64, out)


def hsiphash_u32_batch(words, key, out=None):
    """Row-wise hsiphash_Nu32."""
    _key(key)
    rows = _rows(words, np.uint32, "words", 1, 4)
    return _emit([_HSIP32[len(r)](*r, key) for r in rows], np.uint32, out)


def jhash_words_batch(words, initval=0, out=None):
    """Row-wise jhash_Nword(s)."""
    _word(initval, "initval", 32)
    rows = _rows(words, np.uint32, "words", 1, 3)
    return _emit([_JWORDS[len(r)](*r, initval) for r in rows], np.uint32, out)


def jhash2_batch(words, initval=0, out=None):
    """Row-wise jhash2."""
    _word(initval, "initval", 32)
    rows = _rows(words, np.uint32, "words", 1, 1 << 20)
    return _emit([jhash2(r, initval) for r in rows], np.uint32, out)


def hash_32_batch(vals, bits=32, out=None):
    """Element-wise hash_32."""
    _bits(bits, 32)
    rows = _rows(vals, np.uint32, "vals", 1, 1)
    return _emit([hash_32(r[0], bits) for r in rows], np.uint32, out)


# ------------------------------------------------- resizable table sizing
#
# A line-by-line transcription of net/netfilter/ipvs/ip_vs_core.c
# (ip_vs_rht_desired_size, ip_vs_rht_set_thresholds; commit b655388111cf
# with the 4ee52b7021a7 fix: n <= 1 rounds to 1) and the lock counts of
# ip_vs_conn_tab_alloc / ip_vs_svc_table_alloc / ip_vs_rht_alloc.

INT_MAX = (1 << 31) - 1
LFACTOR_MIN, LFACTOR_MAX = -8, 8
BITS_MIN, BITS_MAX = 1, 27
MOVE_LIMIT = 64
TABLE_ID_MASK = 0x80000000
PROFILES = {"conn": (6, 256, 8), "svc": (4, 64, 0)}


def _int(value, name, lo, hi):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return v


def _bit_range(min_bits, max_bits):
    mn = _int(min_bits, "min_bits", BITS_MIN, BITS_MAX)
    mx = _int(max_bits, "max_bits", BITS_MIN, BITS_MAX)
    if mn > mx:
        raise ValueError(f"min_bits ({mn}) must not exceed max_bits ({mx})")
    return mn, mx


def _roundup_pow_of_two(n):
    return 1 << (n - 1).bit_length()


def desired_size(n, lfactor, min_bits, max_bits, size=None,
                 table_lfactor=None):
    """Buckets the kernel wants for ``n`` entries (ip_vs_rht_desired_size);
    ``size=None``: no table yet."""
    min_bits, max_bits = _bit_range(min_bits, max_bits)
    lfactor = _int(lfactor, "lfactor", LFACTOR_MIN, LFACTOR_MAX)
    n = _int(n, "n", 0, (1 << 63) - 1)
    if size is None:
        return 1 << min_bits
    size = _int(size, "size", 0, (1 << 63) - 1)
    if table_lfactor is None:
        table_lfactor = lfactor
    n = _roundup_pow_of_two(n) if n > 1 else 1
    if lfactor < 0:
        factor = min(-lfactor, max_bits)
        n = min(n, 1 << (max_bits - factor))
        n <<= factor
    else:
        n = min(n >> lfactor, 1 << max_bits)
    if lfactor != table_lfactor:
        return max(1 << min_bits, min(n, 1 << max_bits))
    if n > size:
        return n
    if n > size >> 4:
        return size
    return max(1 << min_bits, min(n << 1, 1 << max_bits))


def thresholds(size, lfactor, min_bits, max_bits):
    """``(u_thresh, l_thresh)`` (ip_vs_rht_set_thresholds)."""
    min_bits, max_bits = _bit_range(min_bits, max_bits)
    lfactor = _int(lfactor, "lfactor", LFACTOR_MIN, LFACTOR_MAX)
    size = _int(size, "size", 0, (1 << 63) - 1)
    if size >= 1 << max_bits:
        u = INT_MAX
    elif lfactor <= 0:
        u = size >> min(-lfactor, max_bits)
    else:
        u = min(size, 1 << (30 - lfactor)) << lfactor
    if size >= 1 << max_bits:
        l = (1 << max_bits) >> 4
    elif size > 1 << min_bits:
        l = u >> 4
    else:
        l = 0
    return u, l


def lock_counts(size, profile="conn", ncpus=None):
    """``(seqcounts, stripe_locks)`` for a table of ``size`` buckets."""
    import os
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, "
                         f"got {profile!r}")
    ncpus = (os.cpu_count() or 1) if ncpus is None else _int(
        ncpus, "ncpus", 1, 1 << 20)
    size = _int(size, "size", 0, (1 << 63) - 1)
    shift, smax, locks = PROFILES[profile]
    scounts = max(1, min(size >> shift, smax))
    scounts = min(scounts, size, _roundup_pow_of_two(ncpus))
    return scounts, min(locks, scounts)


from ._pyref_table import BadKeyError, Table  # noqa: E402,F401
from ._pyref_svctab import SvcTable, ServiceNode, adopt  # noqa: E402,F401
from ._pyref_nlattr import decode_nest, decode_stats  # noqa: E402,F401
