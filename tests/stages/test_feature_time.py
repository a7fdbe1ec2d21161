"""Centre frames of published snippet features, worked by hand."""

from __future__ import annotations

import numpy as np

from vidseg_cli.stages.feature_time import rescaled_centers, snippet_centers, snippet_count_range


def test_snippet_centres_follow_actionformer():
    # feature i's time in ActionFormer: (i * 4 + 0.5 * 16) / fps
    np.testing.assert_array_equal(snippet_centers(4, 16, 4, 300), [8, 12, 16, 20])
    np.testing.assert_array_equal(snippet_centers(3, 5, 5, 100), [2, 7, 12])  # odd: rounded down
    np.testing.assert_array_equal(snippet_centers(1, 16, 4, 5), [4])  # inside a short video


def test_how_many_snippets_fit():
    # 300 frames, 16 at a stride of 4: 72 whole snippets; centres inside up to index 72
    # (72*4 + 8 = 296 < 300, 73*4 + 8 = 300 is not); down to one snippet's worth fewer
    assert snippet_count_range(300, 16, 4) == (68, 73)
    assert snippet_count_range(100, 1, 1) == (99, 100)
    assert snippet_count_range(10, 16, 4) == (1, 1)  # shorter than one snippet: one, padded


def test_rescaled_rows_spread_over_the_covered_frames():
    np.testing.assert_array_equal(rescaled_centers(10, 400), np.arange(10) * 40 + 20)
    c = rescaled_centers(100, 2304)
    assert c[0] == 11 and c[-1] == 2292 and (np.diff(c) > 0).all()
