"""A stage's words split as its click parser reads them."""

from __future__ import annotations

from vidseg_cli.api.catalogue import STAGES
from vidseg_cli.cluster.argv import split_args
from vidseg_cli.cluster.plan import command_of


def test_positional_words_are_the_inputs_and_options_keep_their_values():
    cmd = command_of(STAGES.get("extract-frames"))
    pos, opts = split_args(cmd, ["a.mp4", "-o", "out", "--fps=5", "b.mp4", "--size", "32x24",
                                 "-j2", "--overwrite", "c.mp4"])
    assert pos == ["a.mp4", "b.mp4", "c.mp4"]
    assert opts == ["-o", "out", "--fps=5", "--size", "32x24", "-j2", "--overwrite"]


def test_bundled_short_flags_and_a_value_in_the_next_word_and_double_dash():
    cmd = command_of(STAGES.get("extract-frames"))
    pos, opts = split_args(cmd, ["-qj", "3", "x.mp4", "-o", "out", "--", "-odd.mp4"])
    assert pos == ["x.mp4", "-odd.mp4"]
    assert opts == ["-qj", "3", "-o", "out"]
