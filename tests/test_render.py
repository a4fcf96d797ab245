"""Feature-map grids: every map lands in its own cell, enlarged, in channel order."""
from __future__ import annotations

import numpy as np

from mnist_net.render import LABEL_H, PAD, colorize, render_grid


def test_each_map_fills_its_cell_in_channel_order_and_empty_cells_stay_white():
    c, h, w, columns, factor = 13, 3, 2, 5, 4  # 3 rows, the last one with 3 of its 5 cells used
    maps = np.arange(c, dtype=np.float32)[:, None, None] * np.ones((c, h, w), np.float32)
    maps[:, 0, 0] += 0.5  # one distinct pixel per map shows orientation is kept
    grid = render_grid(maps, columns=columns, scale=(0.0, 16.0), cell=h * factor)
    step_y, step_x = h * factor + LABEL_H + PAD, w * factor + PAD
    for i in range(columns * 3):
        row, col = divmod(i, columns)
        y, x = PAD + LABEL_H + row * step_y, PAD + col * step_x
        cell = grid[y:y + h * factor, x:x + w * factor]
        if i < c:
            expected = colorize(maps[i], 0.0, 16.0).repeat(factor, axis=0).repeat(factor, axis=1)
            np.testing.assert_array_equal(cell, expected)
            assert (grid[y:y + h * factor, x + w * factor] == 255).all()  # the white gap to the next cell
        else:
            assert (cell == 255).all()


def test_stacked_layers_keep_each_image_whole_under_its_title():
    from mnist_net.render import stack_titled, text_image

    rng = np.random.default_rng(0)
    parts = [("conv1: 12 x 26 x 26", rng.integers(0, 256, (20, 200, 3), dtype=np.uint8)),
             ("pool1", rng.integers(0, 256, (7, 90, 3), dtype=np.uint8))]
    out = stack_titled(parts)
    y = 0
    for title, img in parts:
        text = text_image(title)
        np.testing.assert_array_equal(out[y + 1:y + LABEL_H, PAD:PAD + text.shape[1]], text[:LABEL_H - 1])
        np.testing.assert_array_equal(out[y + LABEL_H:y + LABEL_H + img.shape[0], :img.shape[1]], img)
        assert (out[y + LABEL_H:y + LABEL_H + img.shape[0], img.shape[1]:] == 255).all()
        y += img.shape[0] + LABEL_H + PAD
    assert out.shape == (y, 200, 3)


def test_confidences_short_of_certain_never_read_100_percent():
    from mnist_net.report import percent

    assert [percent(p) for p in (0.77, 0.994, 0.995, 0.9994, 0.99951, 1.0)] == [
        "77%", "99%", "99.5%", "99.9%", ">99.9%", "100%"]


def test_every_layer_view_labels_the_class_scores_by_digit_and_marks_the_prediction():
    from conftest import ROOT
    from mnist_net.checkpoint import load_model
    from mnist_net.inference import analyze

    result = analyze(load_model(), str(ROOT / "examples" / "mnist_test_0000_digit7.png"), with_layers=True)
    marked = [bool((np.asarray(result.layers[b]) == (220, 30, 30)).all(-1).any()) for b in result.layers]
    assert marked == [False, False, False, True]  # the prediction's mark, as on the block-4 grid


def test_the_model_tab_says_never_for_a_run_that_did_not_reach_the_target():
    from mnist_net.report import training_summary

    metrics = {"recipe": {"name": "assignment"}, "args": {"seed": 2}, "device": "CPU", "first_epoch_at_99_4": None,
               "best_accuracy": 99.35, "best_epoch": 19}
    assert ">= 99.4%: never, best 99.35% at epoch 19" in training_summary(metrics)
