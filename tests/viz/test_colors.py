"""Class colours depend on the class name alone."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT
from vidseg_cli.viz.colors import class_color, hex_color, palette


def test_a_class_keeps_its_colour_whatever_the_order_or_the_file():
    a = palette(["background", "jump", "run", "walk"])
    b = palette(["background", "walk", "jump"])
    assert a[1] == b[2] and a[3] == b[1]
    assert a[0] is None and hex_color("background") == "#808080"


def test_colours_are_the_same_in_another_process():
    # A hash seeded per process (Python's hash()) would change between runs.
    code = "from vidseg_cli.viz.colors import hex_color; print(hex_color('Orbit'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)})
    assert other.stdout.strip() == hex_color("Orbit")
    assert re.fullmatch(r"#[0-9a-f]{6}", hex_color("Orbit"))


def test_names_get_distinct_readable_colours():
    names = [f"class {k}" for k in range(40)]
    cols = [class_color(n) for n in names]
    assert len(set(cols)) == len(cols)
    for r, g, b in cols:
        assert max(r, g, b) >= 200  # value >= 0.8: visible on a dark frame
        assert max(r, g, b) - min(r, g, b) >= 0.55 * max(r, g, b) - 1  # saturated
