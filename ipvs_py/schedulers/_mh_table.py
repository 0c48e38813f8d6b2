"""The Maglev lookup table of ``ip_vs_mh.c``: permutation and population.

Kept apart from :mod:`.mh` because it is the one large helper (the kernel's
``ip_vs_mh_permutate``/``ip_vs_mh_populate``).  Quantities:

* ``TAB_SIZE`` = 4093, the prime ``primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]``
  for the default index 12; ``TAB_BITS`` = 12 / 2 = 6.
* per dest: ``offset = hsiphash(addr_fold + port, hash1) % 4093`` and
  ``skip = hsiphash(addr_fold + port, hash2) % 4092 + 1``; its preference
  list is ``offset, offset + skip, ...`` mod 4093.
* ``turns = (last_weight / gcd) >> rshift`` (or 1 when that is 0 but the
  weight is not), where ``gcd`` is over the positive ``last_weight``\\ s and
  ``rshift = max(0, fls(max_weight / gcd) - 6)`` keeps the table from
  being swamped by huge weights.

Population walks the list repeatedly; each dest with ``turns >= 1`` claims
``turns`` free slots in a row (its next preferred free positions) before the
next dest gets a go, until all 4093 slots are set.  Keys are the kernel's
fixed ``{2654435761, 2654435761}`` and ``{2654446892, 2654446892}``: the
table, unlike siphash-keyed hash tables, is the same on every boot.
"""
import struct

from ipvs_py import hashing as _hashing

PRIMES = (251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)
TAB_INDEX = 12                       # CONFIG_IP_VS_MH_TAB_INDEX default
TAB_BITS = TAB_INDEX // 2
TAB_SIZE = PRIMES[TAB_INDEX - 8]     # 4093
HASH1 = struct.pack("<QQ", 2654435761, 2654435761)
HASH2 = struct.pack("<QQ", 2654446892, 2654446892)


def hashkey(fold, port, key, offset=0):
    """``ip_vs_mh_hashkey()``: hsiphash of the u32 ``offset + port + fold``."""
    return _hashing.hsiphash_1u32((offset + port + fold) & 0xFFFFFFFF, key)


def gcd_weight(weights):
    """``ip_vs_mh_gcd_weight()`` over ``last_weight``\\ s (0 if none > 0)."""
    from math import gcd
    g = 0
    for w in weights:
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    return g


def shift_weight(weights, g):
    """``ip_vs_mh_shift_weight()``."""
    if g < 1:
        return 0
    mw = max([0, *weights]) // g
    shift = mw.bit_length() - TAB_BITS          # fls(mw) - IP_VS_MH_TAB_BITS
    return shift if shift >= 0 else 0


def build(folds_ports, weights, g, rshift, old=None):
    """The lookup table: a list of ``TAB_SIZE`` dest indices (None = empty).

    ``folds_ports[i]`` is ``(addr_fold, port)`` of dest i in list order,
    ``weights[i]`` its ``last_weight``.  With ``g < 1`` the table is reset
    (all None); ``old`` is returned unchanged when there are more dests than
    slots (the kernel's -EINVAL leaves the table alone).
    """
    n = len(weights)
    if n > TAB_SIZE:
        return old if old is not None else [None] * TAB_SIZE
    if g < 1:
        return [None] * TAB_SIZE
    perm, skip, turns = [], [], []
    for (fold, port), lw in zip(folds_ports, weights):
        perm.append(hashkey(fold, port, HASH1) % TAB_SIZE)
        skip.append(hashkey(fold, port, HASH2) % (TAB_SIZE - 1) + 1)
        turns.append(((lw // g) >> rshift) or (1 if lw != 0 else 0))
    table = [None] * TAB_SIZE
    used = bytearray(TAB_SIZE)
    filled = 0
    dt_count = 0
    while True:
        i = 0
        while i < n:
            if turns[i] < 1:            # ignore added server with zero weight
                i += 1
                continue
            c = perm[i]
            while used[c]:
                c += skip[i]
                if c >= TAB_SIZE:
                    c -= TAB_SIZE
            perm[i] = c
            used[c] = 1
            table[c] = i
            filled += 1
            if filled == TAB_SIZE:
                return table
            dt_count += 1
            if dt_count >= turns[i]:
                dt_count = 0
                i += 1
