"""The demo's fast-path section: runs on sessions the model installed, or
says in one line why it is skipped."""
import errno

from rich.console import Console

from ipvs_py.bpf import demo_section
from ipvs_py.bpf.errors import BpfPermissionError


def _run(**kw):
    console = Console(record=True, width=120)
    demo_section.fastpath_section(console, **kw)
    return console.export_text()


def test_section_shows_both_paths(fastpath):   # fixture: skip if no BPF
    text = _run(n=500, repeat=1000)
    assert "feed installed 500 sessions" in text
    assert "model, Cython (Netns.replay)" in text and "tc program" in text
    assert "checksums valid" in text
    assert "0 sessions left in the maps (500 removed)" in text


def test_section_skips_with_the_reason(monkeypatch):
    def refuse(**kw):
        raise BpfPermissionError(errno.EPERM, "MAP_CREATE", "map 'sess_in'")
    monkeypatch.setattr(demo_section, "FastPath", refuse)
    text = _run(n=10)
    assert text.startswith("─") and "fast path skipped: BPF is not available" in text
    assert "Operation not permitted" in text or "EPERM" in text
    assert len([line for line in text.splitlines() if line.strip()]) == 2
