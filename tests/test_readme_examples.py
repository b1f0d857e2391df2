"""Every Python example in the README runs as written and prints what it says.

A README example that no test runs rots (one did: it imported a module that
had moved). Each ```python block is run verbatim in a fresh interpreter in an
empty directory; the comment line under each ``print(...)`` is the output the
README promises, compared line for line.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[tuple[str, str]]:
    """(heading above it, code) for every ```python block of the README."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for found in re.finditer(r"```python\n(.*?)```", text, re.S):
        headings = re.findall(r"^#+ (.+)$", text[: found.start()], re.M)
        blocks.append((headings[-1] if headings else "top", found.group(1)))
    return blocks


def expected_output(code: str) -> list[str]:
    """The comment line under each ``print(...)``: what the README says it prints."""
    return [
        nxt.strip()[2:]
        for line, nxt in itertools.pairwise(code.splitlines())
        if line.strip().startswith("print(") and nxt.strip().startswith("# ")
    ]


def test_the_readme_has_examples() -> None:
    headings = [heading for heading, _ in python_blocks()]
    assert "A simulated trigger, end to end" in headings
    assert "Driving a simulated device from Python" in headings


@pytest.mark.parametrize(
    "code", [code for _, code in python_blocks()], ids=[h for h, _ in python_blocks()]
)
def test_example_runs_and_prints_what_it_says(code: str, tmp_path: Path) -> None:
    expected = expected_output(code)
    prints = sum(line.strip().startswith("print(") for line in code.splitlines())
    assert len(expected) == prints, "every print in the example shows its output below it"
    # The environment a user may have set must not change what the example does.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPIOZERO_PIN_FACTORY": "mock"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected
