"""``ipvs-py demo``: a short tour of the model.

For now it shows the kernel's hash functions at work on IPVS keys, the way
the 2026 per-net tables use them, and how fast the compiled core hashes.
"""
import ipaddress
import random
import socket
import struct
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from . import hashing


def _be32(addr):
    """The raw 32-bit word of an IPv4 address as the kernel holds it
    (network byte order in memory, read as a native little-endian u32)."""
    return struct.unpack("<I", socket.inet_aton(addr))[0]


def _be16(port):
    return struct.unpack("<H", struct.pack(">H", port))[0]


def _examples(console, key):
    """The kernel's table hashes applied to one service and one connection."""
    k0 = int.from_bytes(key[:8], "little") & 0xFFFFFFFF
    vip, vport, proto = "192.0.2.10", 80, socket.IPPROTO_TCP
    cip, cport = "198.51.100.7", 40000
    # ip_vs_svc_hashval: jhash_3words(ntohs(port), protocol, addr, key[0])
    svc = hashing.jhash_3words(vport, proto, _be32(vip), k0)
    # ip_vs_conn_hashkey (IPv4): siphash_2u64(proto<<16 | port | addr<<32,
    #                                         laddr<<32 | lport, key)
    conn = hashing.siphash_2u64(proto << 16 | _be16(cport) | _be32(cip) << 32,
                                _be32(vip) << 32 | _be16(vport), key)
    # ip_vs_sh_hashkey: hash_32(ntohs(port) + ntohl(addr), 8), port 0
    # unless the sh-port flag is set.
    sh_slot = hashing.hash_32(int(ipaddress.IPv4Address(cip)), 8)

    t = Table(title="Kernel hashes on IPVS keys (random table key)")
    t.add_column("use")
    t.add_column("kernel function")
    t.add_column("value", justify="right")
    t.add_column("lands in", justify="right")
    for use, fn, val, where in [
        (f"service TCP {vip}:{vport}", "jhash_3words", svc,
         f"bucket {svc & 0x7FFFFFFF & 15} of 16"),
        (f"conn {cip}:{cport} -> {vip}:{vport}", "siphash_2u64", conn,
         f"bucket {conn & 0x7FFFFFFF & 4095} of 4096"),
        (f"sh scheduler, client {cip}", "hash_32(addr, 8)", sh_slot,
         f"slot {sh_slot} of 256"),
    ]:
        t.add_row(use, fn, f"0x{val:x}", where)
    console.print(t)


def _time_best(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _speed(console, key, n_keys, rng):
    u64 = rng.integers(0, 2**63, size=(n_keys, 2), dtype=np.uint64)
    u32 = rng.integers(0, 2**32, size=(n_keys, 3), dtype=np.uint32)
    few = [tuple(map(int, row)) for row in u64[:20000]]
    rows = [
        ("siphash_2u64 (conn key)",
         lambda: hashing.siphash_u64_batch(u64, key),
         lambda: [hashing.siphash_2u64(a, b, key) for a, b in few]),
        ("jhash_3words (service key)",
         lambda: hashing.jhash_words_batch(u32, 7),
         lambda: [hashing.jhash_3words(a & 0xFFFFFFFF, b & 0xFFFFFFFF, 6, 7)
                  for a, b in few]),
        ("hsiphash_3u32",
         lambda: hashing.hsiphash_u32_batch(u32, key),
         lambda: [hashing.hsiphash_3u32(a & 0xFFFFFFFF, b & 0xFFFFFFFF, 6, key)
                  for a, b in few]),
        ("hash_32 (sh/dh slot)",
         lambda: hashing.hash_32_batch(u32[:, 0], 8),
         lambda: [hashing.hash_32(a & 0xFFFFFFFF, 8) for a, _ in few]),
    ]
    t = Table(title=f"Speed on this machine ({n_keys:,} keys per batch)")
    t.add_column("function")
    t.add_column("batch ns/key", justify="right")
    t.add_column("one call from Python ns", justify="right")
    t.add_column("batch speed-up", justify="right")
    for name, batch, scalar in rows:
        b = _time_best(batch) / n_keys * 1e9
        s = _time_best(scalar) / len(few) * 1e9
        t.add_row(name, f"{b:.1f}", f"{s:.0f}", f"{s / b:.0f}x")
    console.print(t)


def run(n_keys=1_000_000, seed=1, console=None):
    """Print the tour; returns the process exit code."""
    console = console or Console()
    if n_keys < 1:
        console.print("[red]--keys must be at least 1[/red]")
        return 2
    rng = np.random.default_rng(seed)
    key = random.Random(seed).randbytes(16)
    console.rule("[bold]ipvs_py demo")
    console.print("Each per-net IPVS table has its own random 128-bit key; "
                  f"this run's key: {key.hex()}")
    _examples(console, key)
    _speed(console, key, n_keys, rng)
    console.print("Kernel-exact: checked against lib/siphash_kunit.c and "
                  "lookup3 vectors by the test suite (tests/core).")
    return 0
