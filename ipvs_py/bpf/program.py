"""The loaded fast path: its maps and its tc program.

:class:`FastPath` compiles (or reuses) the object, creates the maps the
object declares (session maps sized by the caller), points the program at
them and loads it.  It owns every fd it opens; ``close()`` releases them,
and an attached program keeps its maps alive in the kernel on its own.
"""
import os
import sys

from .build import DEFAULT_SOURCE, compile_program
from .elf import BpfObject
from .layout import STAT_NAMES, check_mapdefs
from .syscall import Map, prog_load, test_run

PROG_SECTION = "tc"
PROG_NAME = "ipvs_fastpath"
SESSION_MAPS = ("sess_in", "sess_out")


class FastPath:
    """The tc program and its maps, loaded into the kernel.

    ``max_sessions`` bounds each session map (one entry per connection
    and direction).  ``obj_path`` loads a prebuilt object instead of
    compiling ``source``.
    """

    def __init__(self, max_sessions=65536, source=DEFAULT_SOURCE,
                 obj_path=None):
        obj = BpfObject.from_file(obj_path or compile_program(source))
        check_mapdefs(obj.maps)
        self.maps = {}
        try:
            for name, d in obj.maps.items():
                entries = max_sessions if name in SESSION_MAPS else d.max_entries
                self.maps[name] = Map(d.type, d.key_size, d.value_size,
                                      entries, d.map_flags, name=f"ipvs_{name}")
            insns = obj.program(PROG_SECTION,
                                {n: m.fd for n, m in self.maps.items()})
            self.prog_fd = prog_load(insns, obj.license, name=PROG_NAME)
        except BaseException:
            self.close()
            raise
        self.sess_in = self.maps["sess_in"]
        self.sess_out = self.maps["sess_out"]
        self.insn_count = len(insns) // 8

    def run(self, frame, repeat=1):
        """BPF_PROG_TEST_RUN on one Ethernet frame.

        Returns ``(retval, frame_out, ns_per_run)``; retval is the tc
        action (0 = TC_ACT_OK, 2 = TC_ACT_SHOT).
        """
        return test_run(self.prog_fd, frame, repeat)

    def stats(self):
        """Program counters: pass / in / out / err packet counts."""
        m, order = self.maps["stats"], sys.byteorder   # host-endian u32/u64
        return {name: int.from_bytes(m.lookup(i.to_bytes(4, order)), order)
                for i, name in enumerate(STAT_NAMES)}

    def close(self):
        """Release the program fd and our map fds."""
        fd = getattr(self, "prog_fd", -1)
        if fd >= 0:
            os.close(fd)
            self.prog_fd = -1
        for m in getattr(self, "maps", {}).values():
            m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
