"""Table sizing against a direct transcription of the kernel's formulas.

``kernel_desired``/``kernel_thresholds`` below are written from the kernel
source (ip_vs_core.c: ip_vs_rht_desired_size, ip_vs_rht_set_thresholds,
as merged with the 4ee52b7021a7 fix) in C integer style, independently of
both implementations; every lfactor -8..8, bit ranges 4..20 and 8..20,
counts 0..2^21 at powers of two and their neighbours, every table size in
the range, and the table's own lfactor equal or not.
"""
import pytest

INT_MAX = 2**31 - 1
LFACTORS = range(-8, 9)
RANGES = [(4, 20), (8, 20)]
COUNTS = sorted({0, 1, 2, 3} | {v for k in range(22)
                                for v in (2**k - 1, 2**k, 2**k + 1)})


def roundup_pow_of_two(n):
    p = 1
    while p < n:
        p *= 2
    return p


def clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def kernel_desired(t_size, t_lfactor, n, lfactor, min_bits, max_bits):
    if t_size is None:                              # if (!t)
        return 1 << min_bits
    n = roundup_pow_of_two(n) if n > 1 else 1
    if lfactor < 0:
        factor = min(-lfactor, max_bits)
        n = min(n, 1 << (max_bits - factor))
        n <<= factor
    else:
        n = min(n >> lfactor, 1 << max_bits)
    if lfactor != t_lfactor:
        return clamp(n, 1 << min_bits, 1 << max_bits)
    if n > t_size:
        return n
    if n > t_size >> 4:
        return t_size
    return clamp(n << 1, 1 << min_bits, 1 << max_bits)


def kernel_thresholds(size, lfactor, min_bits, max_bits):
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


@pytest.mark.parametrize("min_bits,max_bits", RANGES)
@pytest.mark.parametrize("lfactor", LFACTORS)
def test_desired_size_exhaustive(core, min_bits, max_bits, lfactor):
    desired = core.table.desired_size
    sizes = [1 << b for b in range(min_bits, max_bits + 1)]
    other = {-8, 0, 8, lfactor + 1 if lfactor < 8 else lfactor - 1} - {lfactor}
    for n in COUNTS:
        assert desired(n, lfactor, min_bits, max_bits) == \
            kernel_desired(None, None, n, lfactor, min_bits, max_bits)
        for size in sizes:
            for tlf in (lfactor, *other):
                want = kernel_desired(size, tlf, n, lfactor, min_bits,
                                      max_bits)
                got = desired(n, lfactor, min_bits, max_bits, size, tlf)
                assert got == want, (n, size, tlf)


@pytest.mark.parametrize("min_bits,max_bits", RANGES + [(1, 27), (12, 12)])
@pytest.mark.parametrize("lfactor", LFACTORS)
def test_thresholds_exhaustive(core, min_bits, max_bits, lfactor):
    for bits in range(0, max_bits + 2):
        size = 1 << bits
        assert core.table.thresholds(size, lfactor, min_bits, max_bits) == \
            kernel_thresholds(size, lfactor, min_bits, max_bits), size


def test_desired_size_examples(core):
    """Hand-checked points (ARCHITECTURE.md, the svc commit message)."""
    d = core.table.desired_size
    # svc, lfactor -3: grow above 12.5% load: 17 services in 128 buckets
    assert d(17, -3, 4, 20, 128, -3) == 256
    assert d(16, -3, 4, 20, 128, -3) == 128
    # shrink only when load drops 16x, and keep twice the need
    assert d(8, -3, 4, 20, 1024, -3) == 128     # 64 needed, not > 1024/16
    assert d(9, -3, 4, 20, 1024, -3) == 1024    # 128 needed > 1024/16
    # a new lfactor always yields the clamped target
    assert d(100, 3, 8, 20, 4096, 0) == 256
    # the first table
    assert d(0, 0, 8, 20) == 256


@pytest.mark.parametrize("profile", ["conn", "svc"])
@pytest.mark.parametrize("ncpus", [1, 2, 3, 8, 64, 512])
def test_lock_counts(core, profile, ncpus):
    """conn: clamp(size>>6,1,256) seqcounts, min(8, s) locks; svc:
    clamp(size>>4,1,64), no locks; both capped by size and
    roundup_pow_of_two(ncpus)."""
    shift, smax, locks = {"conn": (6, 256, 8), "svc": (4, 64, 0)}[profile]
    for bits in range(0, 28):
        size = 1 << bits
        s = clamp(size >> shift, 1, smax)
        s = min(s, size, roundup_pow_of_two(ncpus))
        assert core.table.lock_counts(size, profile, ncpus) == \
            (s, min(locks, s))


@pytest.mark.parametrize("args,exc", [
    ((1, 9, 4, 20), ValueError), ((1, -9, 4, 20), ValueError),
    ((1, 0, 0, 20), ValueError), ((1, 0, 4, 28), ValueError),
    ((1, 0, 21, 20), ValueError), ((-1, 0, 4, 20), ValueError),
    ((1, 0.5, 4, 20), TypeError), (("1", 0, 4, 20), TypeError),
    ((1, True, 4, 20), TypeError),
])
def test_sizing_bad_input(core, args, exc):
    with pytest.raises(exc):
        core.table.desired_size(*args)


def test_svctable_sizing_agrees(core):
    """ipvs_py.svctable (the service table, issue 5) keeps its own copy of
    the sizing formulas; hold it to the same answers so the two cannot
    drift apart (STYLE pattern 5: thresholds written once)."""
    svctable = pytest.importorskip("ipvs_py.svctable")
    for lf in LFACTORS:
        for n in COUNTS:
            assert svctable.desired_size(None, None, n, lf) == \
                core.table.desired_size(n, lf, 4, 20)
            for bits in range(4, 21):
                size = 1 << bits
                for tlf in (lf, 0 if lf else 1):
                    assert svctable.desired_size(size, tlf, n, lf) == \
                        core.table.desired_size(n, lf, 4, 20, size, tlf)
        for bits in range(4, 21):
            assert svctable.thresholds(1 << bits, lf) == \
                core.table.thresholds(1 << bits, lf, 4, 20)
