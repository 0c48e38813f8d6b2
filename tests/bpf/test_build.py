"""Compiling the tc program: cache, and clear errors."""
import pytest

from ipvs_py.bpf import BpfBuildError, ElfError
from ipvs_py.bpf.build import DEFAULT_SOURCE, compile_program
from ipvs_py.bpf.elf import MapDef
from ipvs_py.bpf.layout import KEY, VALUE, check_mapdefs


def test_cached_by_content(tmp_path):
    a = compile_program(out_dir=tmp_path)
    assert compile_program(out_dir=tmp_path) == a
    src = tmp_path / "ipvs_fastpath.c"
    src.write_text(DEFAULT_SOURCE.read_text() + "\n/* changed */\n")
    assert compile_program(src, out_dir=tmp_path) != a
    assert not list(tmp_path.glob("tmp*"))   # no half-written leftovers


def test_compile_error_is_reported(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return undeclared; }\n")
    with pytest.raises(BpfBuildError, match="undeclared"):
        compile_program(bad, out_dir=tmp_path)
    assert not list(tmp_path.glob("*.o"))


def test_missing_clang_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("IPVS_PY_BPF_CLANG", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BpfBuildError, match="Debian package 'clang'"):
        compile_program(out_dir=tmp_path)


def test_layout_drift_is_caught():
    good = {n: MapDef(n, 1, KEY.size, VALUE.size, 8, 0)
            for n in ("sess_in", "sess_out")}
    check_mapdefs(good)
    bad = dict(good, sess_out=MapDef("sess_out", 1, KEY.size, VALUE.size - 8, 8, 0))
    with pytest.raises(ElfError, match="layout.py"):
        check_mapdefs(bad)
    with pytest.raises(ElfError, match="no map 'sess_in'"):
        check_mapdefs({"sess_out": good["sess_out"]})
