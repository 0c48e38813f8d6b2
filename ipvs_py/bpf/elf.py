"""A small, strict loader for the one BPF object file we build.

Why not libbpf: the object is ours, has one program section, legacy map
definitions and no BTF, so what a loader must do shrinks to "find the
code, point its map loads at our map fds".  Doing that here keeps the
runtime dependency to the C library and lets the mirror own the maps.

What it accepts (anything else raises :class:`ElfError`):

* ELF64, little endian, ``EM_BPF``, relocatable (``clang -target bpf -c``);
* every section header and every section's bytes inside the file;
* relocations of type ``R_BPF_64_64`` on a ``BPF_LD_IMM64`` instruction in
  the program section, against a symbol in the ``maps`` section whose name
  the caller supplied an fd for.  Those are rewritten to
  ``BPF_PSEUDO_MAP_FD`` loads; no other relocation is performed, so a
  program calling out-of-line functions or using global data is refused
  instead of being loaded half-linked.
"""
import struct
from dataclasses import dataclass

from .errors import ElfError

EM_BPF = 247
ET_REL = 1
SHT_SYMTAB, SHT_REL, SHT_NOBITS = 2, 9, 8
R_BPF_64_64 = 1
BPF_LD_IMM64 = 0x18            # BPF_LD | BPF_IMM | BPF_DW
BPF_PSEUDO_MAP_FD = 1
INSN_SIZE = 8

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_MAPDEF = struct.Struct("<5I")   # struct ipvs_map_def in ipvs_fastpath.c


@dataclass(frozen=True)
class MapDef:
    """A map as the C source declares it (type, sizes, entries, flags)."""
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int


@dataclass(frozen=True)
class _Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


class BpfObject:
    """A parsed object file: ``maps`` (name -> MapDef), ``license``,
    and :meth:`program` to get relocated instructions."""

    def __init__(self, data):
        self._data = bytes(data)
        self._sections = self._read_sections()
        self._by_name = {s.name: s for s in self._sections}
        self._symbols = self._read_symbols()
        self.maps = self._read_maps()
        self.license = self._read_license()

    @classmethod
    def from_file(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    # -- structure ---------------------------------------------------
    def _bytes(self, off, size, what):
        if off < 0 or size < 0 or off + size > len(self._data):
            raise ElfError(f"{what} at {off}+{size} is outside the file "
                           f"({len(self._data)} bytes)")
        return self._data[off:off + size]

    def _read_sections(self):
        hdr = _EHDR.unpack(self._bytes(0, _EHDR.size, "ELF header"))
        ident, e_type, machine = hdr[0], hdr[1], hdr[2]
        shoff, shentsize, shnum, shstrndx = hdr[6], hdr[11], hdr[12], hdr[13]
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise ElfError("not a 64-bit little-endian ELF file")
        if machine != EM_BPF or e_type != ET_REL:
            raise ElfError(f"not a BPF relocatable object (machine {machine}, "
                           f"type {e_type})")
        if shentsize != _SHDR.size or not 0 < shstrndx < shnum:
            raise ElfError("bad section header table")
        raw = []
        for i in range(shnum):
            f = _SHDR.unpack(self._bytes(shoff + i * _SHDR.size, _SHDR.size,
                                         f"section header {i}"))
            name, typ, off, size, link, info, entsize = (
                f[0], f[1], f[4], f[5], f[6], f[7], f[9])
            if typ != SHT_NOBITS:
                self._bytes(off, size, f"section {i}")
            if link >= shnum:
                raise ElfError(f"section {i} links to missing section {link}")
            raw.append((name, typ, off, size, link, info, entsize))
        strtab = raw[shstrndx]
        names = self._bytes(strtab[2], strtab[3], "section names")
        return [_Section(i, self._cstr(names, r[0]), *r[1:])
                for i, r in enumerate(raw)]

    @staticmethod
    def _cstr(table, off):
        if off >= len(table):
            raise ElfError(f"string offset {off} outside its table")
        end = table.find(b"\0", off)
        if end < 0:
            raise ElfError("unterminated string")
        return table[off:end].decode("ascii", "replace")

    def _read_symbols(self):
        symtabs = [s for s in self._sections if s.type == SHT_SYMTAB]
        if len(symtabs) != 1 or symtabs[0].entsize != _SYM.size:
            raise ElfError("expected exactly one symbol table")
        st = symtabs[0]
        strs = self._sections[st.link]
        names = self._bytes(strs.offset, strs.size, "symbol names")
        data = self._bytes(st.offset, st.size, "symbol table")
        syms = []
        for off in range(0, len(data) - _SYM.size + 1, _SYM.size):
            name, _info, _other, shndx, value, size = _SYM.unpack_from(data, off)
            syms.append((self._cstr(names, name), shndx, value, size))
        return syms

    def _read_maps(self):
        sec = self._by_name.get("maps")
        if sec is None:
            return {}
        data = self._bytes(sec.offset, sec.size, "maps")
        maps = {}
        for name, shndx, value, size in self._symbols:
            if shndx != sec.index or not name:
                continue
            if size != _MAPDEF.size or value + size > len(data):
                raise ElfError(f"map {name!r}: bad definition size {size}")
            maps[name] = MapDef(name, *_MAPDEF.unpack_from(data, value))
        return maps

    def _read_license(self):
        sec = self._by_name.get("license")
        if sec is None:
            raise ElfError("no license section (helpers need GPL)")
        raw = self._bytes(sec.offset, sec.size, "license")
        return raw.split(b"\0", 1)[0].decode("ascii")

    # -- program -----------------------------------------------------
    def program(self, section, map_fds):
        """Instructions of ``section`` with map loads pointed at
        ``map_fds`` (map name -> fd).  Returns bytes."""
        sec = self._by_name.get(section)
        if sec is None:
            raise ElfError(f"no program section {section!r}")
        if sec.size == 0 or sec.size % INSN_SIZE:
            raise ElfError(f"section {section!r}: size {sec.size} is not "
                           "a whole number of instructions")
        insns = bytearray(self._bytes(sec.offset, sec.size, section))
        maps_idx = self._by_name["maps"].index if "maps" in self._by_name else -1
        for rel in self._sections:
            if rel.type == SHT_REL and rel.info == sec.index:
                self._relocate(insns, rel, maps_idx, map_fds)
        return bytes(insns)

    def _relocate(self, insns, rel, maps_idx, map_fds):
        if rel.entsize != _REL.size:
            raise ElfError(f"{rel.name}: bad entry size")
        data = self._bytes(rel.offset, rel.size, rel.name)
        for off in range(0, len(data) - _REL.size + 1, _REL.size):
            r_offset, r_info = _REL.unpack_from(data, off)
            sym, typ = r_info >> 32, r_info & 0xffffffff
            if typ != R_BPF_64_64:
                raise ElfError(f"{rel.name}: relocation type {typ} not "
                               "supported (only map loads)")
            if sym >= len(self._symbols):
                raise ElfError(f"{rel.name}: symbol {sym} out of range")
            name, shndx, _value, _size = self._symbols[sym]
            if shndx != maps_idx or name not in map_fds:
                raise ElfError(f"{rel.name}: relocation against {name!r} "
                               "which is not a map we created")
            # LD_IMM64 is two slots; both must be inside the section.
            if r_offset % INSN_SIZE or r_offset + 2 * INSN_SIZE > len(insns):
                raise ElfError(f"{rel.name}: offset {r_offset} out of range")
            if insns[r_offset] != BPF_LD_IMM64:
                raise ElfError(f"{rel.name}: offset {r_offset} is not a "
                               "64-bit immediate load")
            regs = insns[r_offset + 1]
            insns[r_offset + 1] = (regs & 0x0f) | (BPF_PSEUDO_MAP_FD << 4)
            struct.pack_into("<i", insns, r_offset + 4, map_fds[name])
