"""The ```py examples of docs/bpf.md run (as root; skip if the kernel
refuses BPF).  They use ```py, not ```python, so tests/test_docs.py, which
runs without privileges, leaves them to this module."""
import pathlib
import re

import pytest

from ipvs_py.bpf import BpfPermissionError, BpfUnsupportedError

from .conftest import kernel_refuses

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "bpf.md"
BLOCKS = re.findall(r"^```py\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_doc_has_examples():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=lambda c: c.splitlines()[0][:40])
def test_doc_example_runs(code):
    try:
        exec(compile(code, str(DOC), "exec"), {})  # noqa: S102
    except (BpfPermissionError, BpfUnsupportedError) as e:
        kernel_refuses(e)
