"""The README's examples are the files in examples/, verbatim, and they run as the README says.

Each `<!-- file: PATH -->` marker in README.md is followed by a code block that must equal the
file; each `<!-- output: PATH -->` block must equal what PATH prints against a fresh
`omsd --demo` (the file is run as a user would: `python PATH`, with OMSD_ADDRESS set).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Omsd

PACKAGE = Path(__file__).resolve().parents[1]
README = (PACKAGE / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- (file|output): (\S+) -->\n```[a-z]*\n(.*?)```", re.S)
BLOCKS = BLOCK.findall(README)


def test_readme_has_the_examples() -> None:
    # Guards the regex: both examples are shown, each with its output.
    assert sorted((kind, path) for kind, path, _ in BLOCKS) == [
        ("file", "examples/checkout.py"),
        ("file", "examples/checkout_async.py"),
        ("output", "examples/checkout.py"),
        ("output", "examples/checkout_async.py"),
    ]


@pytest.mark.parametrize("path,text", [(p, t) for k, p, t in BLOCKS if k == "file"])
def test_readme_block_is_the_file(path: str, text: str) -> None:
    # The code people copy from the README is exactly the code the tests run.
    assert text == (PACKAGE / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("path,text", [(p, t) for k, p, t in BLOCKS if k == "output"])
def test_example_prints_what_the_readme_says(demo: Omsd, path: str, text: str) -> None:
    # Run the example against a fresh demo server; its output is the README's, line for line.
    env = dict(os.environ, OMSD_ADDRESS=demo.address, PYTHONPATH=str(PACKAGE))
    env.pop("OMSD_API_KEY", None)
    result = subprocess.run(
        [sys.executable, str(PACKAGE / path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == text
