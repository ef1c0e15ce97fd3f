"""The explanation figure and the band names: ranges that never overlap, labels never clipped."""

from __future__ import annotations

import re

import numpy as np
import pytest

from encore.explain.attribution import band_ranges_hz
from encore.explain.plot import draw_explanation, format_hz_range, plot_explanation
from encore.explain.song import SongExplanation
from encore.features.logmel import mel_frequencies

RANGE = re.compile(r"^(\d+)-(\d+) Hz$")


def parse_range(text: str) -> tuple[float, float]:
    match = RANGE.match(text)
    assert match, f"{text!r} is not a frequency range"
    return float(match.group(1)), float(match.group(2))


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_band_ranges_tile_the_spectrum_without_overlap(mel_scale):
    points = mel_frequencies(64 + 2, f_min=20.0, f_max=11025.0, mel_scale=mel_scale)
    ranges = band_ranges_hz(points)
    assert ranges.shape == (64, 2)
    assert ranges[0, 0] == pytest.approx(20.0) and ranges[-1, 1] == pytest.approx(11025.0)
    assert np.all(ranges[:, 0] < ranges[:, 1])
    np.testing.assert_allclose(ranges[:-1, 1], ranges[1:, 0])  # each band ends where the next begins
    centres = points[1:-1]
    assert np.all((ranges[:, 0] < centres) & (centres < ranges[:, 1]))  # and holds its own filter's centre


def explanation(n_mels: int = 32, n_frames: int = 100, n_bands: int = 8, segments=None) -> SongExplanation:
    rng = np.random.default_rng(0)
    points = mel_frequencies(n_mels + 2, f_min=0.0, f_max=8000.0)
    edges = band_ranges_hz(points)
    frame_seconds = np.arange(n_frames) * 0.02
    if segments is None:
        # the top-right cell of the grid, and one at the bottom-left: labels there are the ones clipped before
        segments = [
            {
                "start_s": 1.75,
                "end_s": 2.0,
                "f_low_hz": round(edges[28, 0], 1),
                "f_high_hz": round(edges[31, 1], 1),
                "share": 0.4213,
            },
            {
                "start_s": 0.0,
                "end_s": 0.25,
                "f_low_hz": round(edges[0, 0], 1),
                "f_high_hz": round(edges[3, 1], 1),
                "share": 0.1187,
            },
            {
                "start_s": 1.0,
                "end_s": 1.25,
                "f_low_hz": round(edges[12, 0], 1),
                "f_high_hz": round(edges[15, 1], 1),
                "share": 0.0905,
            },
        ]
    return SongExplanation(
        log_mel=rng.normal(-40, 10, (n_mels, n_frames)),
        attribution=rng.normal(0, 1, (n_mels, n_frames)),
        target="rock",
        kind="class",
        method="occlusion",
        value=0.87,
        segments=segments,
        frame_seconds=frame_seconds,
        band_edges_hz=edges,
        duration=2.0,
        n_segments=8,
        n_bands=n_bands,
    )


def test_the_axes_name_each_band_by_a_range_that_meets_the_next():
    fig = draw_explanation(explanation())
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) == 8
        ranges = [parse_range(text) for text in labels]
        assert ranges[0][0] == 0 and ranges[-1][1] == 8000
        for (low, high), (next_low, _) in zip(ranges, ranges[1:]):
            assert low < high <= next_low, f"{labels} overlap"
            assert high == next_low  # printed edges meet: no gap, no overlap


def test_many_bands_are_named_by_their_edges():
    fig = draw_explanation(explanation(n_mels=64, n_bands=32, segments=[]))
    labels = [float(t.get_text()) for t in fig.axes[1].get_yticklabels()]
    assert labels == sorted(labels) and labels[0] == 0 and labels[-1] == 8000


def render(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _extent(artist, renderer):
    return artist.get_window_extent(renderer)


def test_the_percentages_sit_beside_the_plot_in_full():
    exp = explanation()
    fig = draw_explanation(exp)
    renderer = render(fig)
    top, bottom = fig.axes
    listing = [t for t in bottom.texts if t.get_gid() == "segment-list"]
    assert len(listing) == 1
    text = listing[0].get_text()
    for rank, seg in enumerate(exp.segments, start=1):
        assert f"{rank}  {seg['share']:6.1%}" in text
        assert format_hz_range(seg["f_low_hz"], seg["f_high_hz"]) in text
    box = _extent(listing[0], renderer)
    for ax in (top, bottom):  # the list is outside both images, so nothing covers it
        assert not box.overlaps(ax.get_window_extent(renderer))
    assert box.x0 > bottom.get_window_extent(renderer).x1
    assert fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans).contains(box.x1, box.y0)


def test_each_box_number_is_inside_the_plot_even_in_a_corner():
    exp = explanation()
    fig = draw_explanation(exp)
    renderer = render(fig)
    bottom = fig.axes[1]
    area = bottom.get_window_extent(renderer)
    numbers = {t.get_text(): _extent(t, renderer) for t in bottom.texts if t.get_gid() != "segment-list"}
    assert sorted(numbers) == ["1", "2", "3"]
    for extent in numbers.values():
        assert area.x0 <= extent.x0 and extent.x1 <= area.x1 and area.y0 <= extent.y0 and extent.y1 <= area.y1


def test_the_png_is_the_whole_figure():
    png = plot_explanation(explanation())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width > 1000  # the 11-inch figure with the segment list, not cropped to the plots


def test_band_importance_rows_meet_and_the_report_names_them(tone_run):
    from encore.evaluate.report import _importance_name
    from encore.explain.importance import mel_band_importance

    _, predictor, waveforms, manifest = tone_run
    songs = [waveforms[t] for t in manifest.subset("val")["track_id"]][:2]
    rows = sorted(mel_band_importance(predictor, songs, n_bands=4), key=lambda r: r["f_low_hz"])
    assert len(rows) == 4
    for row, after in zip(rows, rows[1:]):
        assert row["f_high_hz"] == after["f_low_hz"]
        assert _importance_name(row) == row["band"]
        low, high = parse_range(row["band"])
        assert high == pytest.approx(parse_range(after["band"])[0])


def test_numbers_of_small_neighbouring_boxes_do_not_overlap():
    exp = explanation(n_mels=32, n_bands=32, segments=[])
    edges = exp.band_edges_hz
    exp.segments = [  # four one-band cells stacked and side by side
        {
            "start_s": t0,
            "end_s": t0 + 0.0625,
            "f_low_hz": round(edges[row, 0], 1),
            "f_high_hz": round(edges[row, 1], 1),
            "share": 0.1,
        }
        for t0, row in ((1.0, 10), (1.0, 11), (1.0625, 10), (1.0625, 11))
    ]
    fig = draw_explanation(exp)
    renderer = render(fig)
    bottom = fig.axes[1]
    numbers = [t for t in bottom.texts if t.get_gid() != "segment-list"]
    boxes = [t.get_window_extent(renderer) for t in numbers]
    assert len(boxes) == 4
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "two box numbers print over each other"
