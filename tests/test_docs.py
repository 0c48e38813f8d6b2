"""Every ```python block in README.md and docs/*.md runs without error."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks():
    for path in DOCS:
        for i, match in enumerate(BLOCK.finditer(path.read_text())):
            yield pytest.param(match.group(1), id=f"{path.name}-{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_doc_example_runs(code):
    exec(compile(code, "<doc>", "exec"), {})  # noqa: S102
