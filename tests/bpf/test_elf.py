"""The ELF loader accepts our object and refuses anything malformed."""
import struct

import pytest

from ipvs_py.bpf.build import compile_program
from ipvs_py.bpf.elf import BpfObject, _EHDR, _SHDR
from ipvs_py.bpf.errors import ElfError
from ipvs_py.bpf.layout import KEY, VALUE

FDS = {"sess_in": 101, "sess_out": 102, "stats": 103}


@pytest.fixture(scope="module")
def raw():
    with open(compile_program(), "rb") as f:
        return f.read()


def test_reads_maps_and_license(raw):
    obj = BpfObject(raw)
    assert obj.license == "GPL"
    assert set(obj.maps) == {"sess_in", "sess_out", "stats"}
    assert (obj.maps["sess_in"].key_size, obj.maps["sess_in"].value_size) == (
        KEY.size, VALUE.size)


def test_map_loads_point_at_our_fds(raw):
    insns = BpfObject(raw).program("tc", FDS)
    seen = set()
    for off in range(0, len(insns), 8):
        if insns[off] == 0x18 and insns[off + 1] >> 4 == 1:
            seen.add(struct.unpack_from("<i", insns, off + 4)[0])
    assert seen == set(FDS.values())


def test_unknown_map_refused(raw):
    with pytest.raises(ElfError, match="not a map we created"):
        BpfObject(raw).program("tc", {"sess_in": 1, "sess_out": 2})


def test_missing_section_refused(raw):
    with pytest.raises(ElfError, match="no program section"):
        BpfObject(raw).program("xdp", FDS)


def _shdr_field(raw, index, field_offset, value, fmt="<Q"):
    shoff = _EHDR.unpack_from(raw)[6]
    b = bytearray(raw)
    struct.pack_into(fmt, b, shoff + index * _SHDR.size + field_offset, value)
    return bytes(b)


@pytest.mark.parametrize("mutate, msg", [
    (lambda r: r[:40], "outside the file"),
    (lambda r: b"\x7fELF\x01" + r[5:], "64-bit little-endian"),
    (lambda r: r[:18] + struct.pack("<H", 62) + r[20:], "not a BPF"),
    (lambda r: r[:-8], "outside the file"),            # section headers cut
])
def test_malformed_headers(raw, mutate, msg):
    with pytest.raises(ElfError, match=msg):
        BpfObject(mutate(raw))


def test_section_beyond_file_refused(raw):
    obj = BpfObject(raw)
    idx = obj._by_name["tc"].index
    bad = _shdr_field(raw, idx, 32, len(raw) * 4)        # sh_size
    with pytest.raises(ElfError, match="outside the file"):
        BpfObject(bad)


def test_relocation_outside_program_refused(raw):
    obj = BpfObject(raw)
    rel = obj._by_name[".reltc"]
    b = bytearray(raw)
    struct.pack_into("<Q", b, rel.offset, obj._by_name["tc"].size + 64)
    with pytest.raises(ElfError, match="out of range"):
        BpfObject(bytes(b)).program("tc", FDS)


def test_relocation_on_non_load_refused(raw):
    obj = BpfObject(raw)
    rel = obj._by_name[".reltc"]
    b = bytearray(raw)
    struct.pack_into("<Q", b, rel.offset, 0)            # insn 0 is no LD_IMM64
    with pytest.raises(ElfError, match="not a 64-bit immediate load"):
        BpfObject(bytes(b)).program("tc", FDS)


def test_other_relocation_types_refused(raw):
    obj = BpfObject(raw)
    rel = obj._by_name[".reltc"]
    b = bytearray(raw)
    info = struct.unpack_from("<Q", b, rel.offset + 8)[0]
    struct.pack_into("<Q", b, rel.offset + 8, (info & ~0xffffffff) | 10)
    with pytest.raises(ElfError, match="relocation type 10"):
        BpfObject(bytes(b)).program("tc", FDS)
