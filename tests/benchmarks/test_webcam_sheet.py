"""The webcam before/after sheet: one row per video, the crop zoomed, the output on the right."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgesharp.benchmarks import webcam_sheet


def _video(path, frames, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        img = np.full((size[1], size[0], 3), 40 + 20 * i, np.uint8)
        cv2.rectangle(img, (30, 20), (60, 44), (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return path


def test_pair_row_crops_zooms_and_places_the_output_right():
    before = np.zeros((60, 80, 3), np.uint8)
    after = np.full((60, 80, 3), 200, np.uint8)
    before[20, 40] = 255
    row = webcam_sheet.pair_row(before, after, crop=(40, 30), zoom=2, gap=4)
    assert row.shape == (60, 2 * 80 + 4, 3)
    assert (row[:, 84:] == 200).all() and (row[:, 80:84] == 255).all()
    # crop starts at x (80-40)//2 = 20, y (60-30)//3 = 10: pixel (20, 40) lands at zoomed (20, 40)..(21, 41)
    assert (row[20:22, 40:42] == 255).all() and row[:, :80].sum() == 255 * 3 * 4


def test_sheet_has_a_row_per_video_through_the_runtime(tmp_path, tiny_bundle, capsys):
    a = _video(tmp_path / "a.avi", 5)
    b = _video(tmp_path / "b.avi", 3, size=(64, 48))
    sheet = webcam_sheet.webcam_sheet([a, b], str(tiny_bundle), frame=4, crop=(32, 24), zoom=2)
    assert sheet.shape == (48 + 8 + 48, 2 * 64 + 8, 3)
    assert webcam_sheet.read_frame(b, 10)[0, 0, 0] == pytest.approx(40 + 20 * 2, abs=3)  # last frame when short
    assert webcam_sheet.main(["--model", str(tiny_bundle), "--videos", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 0
    assert cv2.imread(str(tmp_path / "s.png")).shape[:2] == (64 * 2 + 8 + 48 * 2, 96 * 2 + 8 + 96 * 2)  # whole frames: crop > frame
    assert webcam_sheet.main(["--videos", str(tmp_path / "none"), "--out", str(tmp_path / "x.png")]) == 2
    assert "no videos" in capsys.readouterr().err
