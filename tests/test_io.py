"""HyperSpy in and out: formats, calibration, stacks, errors."""
import numpy as np
import pytest

from motiflab import io
from motiflab.errors import InputFileError, MotifLabError


def test_load_array_npy_and_signal(tmp_path, mose2_clean):
    img = mose2_clean.image
    assert io.load(img).data.shape == img.shape
    np.save(tmp_path / "a.npy", img)
    assert io.load(tmp_path / "a.npy").data.shape == img.shape
    s = mose2_clean.to_signal()
    assert io.load(s) is s


@pytest.mark.parametrize("ext", ["hspy", "tif"])
def test_calibration_survives_files(tmp_path, mose2_clean, ext):
    s = mose2_clean.to_signal(include_truth=False)
    path = tmp_path / f"img.{ext}"
    s.save(path)
    data, cal, _ = io.as_image(path)
    assert data.shape == mose2_clean.image.shape
    assert cal.units == "nm"
    assert cal.scale == pytest.approx(mose2_clean.pixel_size, rel=1e-4)


def test_angstrom_calibration_converted_to_nm(mose2_clean):
    s = mose2_clean.to_signal()
    for ax in s.axes_manager.signal_axes:
        ax.units = "Å"
        ax.scale = 0.2
    cal = io.calibration_of(s)
    assert cal.units == "nm" and cal.scale == pytest.approx(0.02)


def test_stack_needs_a_frame():
    stack = np.random.default_rng(0).random((3, 64, 64))
    with pytest.raises(MotifLabError, match="frame="):
        io.load(stack)
    assert io.load(stack, frame=1).data.shape == (64, 64)
    with pytest.raises(MotifLabError, match="outside"):
        io.load(stack, frame=7)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        io.load(tmp_path / "nope.dm4")
    bad = tmp_path / "broken.dm4"
    bad.write_bytes(b"not a dm4 file at all")
    with pytest.raises(InputFileError, match="could not read"):
        io.load(bad)
    with pytest.raises(InputFileError, match="folder"):
        io.load(tmp_path)


def test_check_writable_refuses_to_overwrite(tmp_path):
    p = tmp_path / "r.npz"
    p.write_bytes(b"precious")
    with pytest.raises(InputFileError, match="--overwrite"):
        io.check_writable(p)
    assert p.read_bytes() == b"precious"
    assert io.check_writable(p, overwrite=True) == p


# ------------------------------------------------------------------ results where users work


@pytest.fixture(scope="module")
def analysed():
    from motiflab.analysis import Analysis
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7)
    return Analysis(sim.to_signal(), n_iter=60, seed=0).run()


def test_a_motif_exported_to_atomap_has_our_positions(analysed):
    pytest.importorskip("atomap")
    an = analysed
    sub = an.to_atomap(motif=1)
    mine = an.positions[an.motifs.labels == 1]
    np.testing.assert_allclose(np.column_stack([sub.y_position, sub.x_position]), mine)
    assert sub.pixel_size == pytest.approx(an.calibration.scale) and sub.units == "nm"
    lattice = an.to_atomap()
    assert [s.name for s in lattice.sublattice_list] == [f"motif {k}" for k in range(an.motifs.n_motifs)]
    assert sum(len(s.atom_list) for s in lattice.sublattice_list) == int(np.sum(an.motifs.labels >= 0))
    # Atomap works on them: nearest-neighbour lists for strain / distance maps
    sub.find_nearest_neighbors()
    assert len(sub.atom_list[0].nearest_neighbor_list) > 0
    with pytest.raises(MotifLabError, match="no motif 99"):
        an.to_atomap(motif=99)


def test_markers_persist_when_the_signal_is_saved(analysed, tmp_path):
    import hyperspy.api as hs

    an = analysed
    s = an.signal.deepcopy()
    s.add_marker(an.markers(), permanent=True, plot_marker=False)
    path = tmp_path / "with_markers.hspy"
    s.save(path)
    back = hs.load(path)
    markers = list(back.metadata.Markers)
    assert len(markers) == 1
    m = back.metadata.Markers[markers[0][0]] if isinstance(markers[0], tuple) else markers[0]
    np.testing.assert_allclose(np.asarray(m.kwargs["offsets"]), an.markers().kwargs["offsets"])


# ------------------------------------------------------------------------ motif colours (markers, explorer, report)
def _rgb(c):
    c = c.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], dtype=float)


def _lab(c):
    """CIE L*a*b* (D65) of a hex colour: distances in it are roughly what the eye sees."""
    rgb = _rgb(c) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_delta_e(cols):
    lab = np.array([_lab(c) for c in cols])
    d = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.min()


def test_palette_has_many_distinct_non_grey_colours():
    from motiflab.colors import UNASSIGNED, label_colors, motif_colors

    cols = motif_colors(40)
    assert len(set(cols)) == 40  # no repeat before 40 motifs (the old list repeated after 20)
    rgb = np.array([_rgb(c) for c in cols])
    assert (rgb.max(1) - rgb.min(1) >= 0.25 * 255 - 1).all()  # none grey (nor black / white)
    assert UNASSIGNED not in cols
    assert min(np.linalg.norm(_lab(c) - _lab(UNASSIGNED)) for c in cols) > 20
    # no two look alike (CIE76 ΔE; the hand-made list had #1f77b4 / #3182bd at ΔE 4.6, "the same blue")
    assert _min_delta_e(cols[:20]) > 20
    assert _min_delta_e(cols) > 10
    assert label_colors(np.array([-1, 0, 19]), 20).tolist() == [UNASSIGNED, cols[0], cols[19]]


def test_markers_use_the_shared_palette():
    from motiflab.colors import UNASSIGNED, motif_colors

    m = io.to_markers(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([0, 1, -1]))
    colors = [str(c) for c in np.ravel(m.kwargs["color"])]
    assert colors == motif_colors(2) + [UNASSIGNED]


@pytest.mark.parametrize("background", ["#e377c2", "#17becf", "#bcbd22", "#ffff9a", "#1f77b4", "#3a0183"])
def test_label_text_is_readable_on_any_motif_colour(background):
    from motiflab.colors import luminance, motif_colors, text_color

    def contrast(a, b):
        la, lb = sorted([luminance(a), luminance(b)])
        return (lb + 0.05) / (la + 0.05)

    assert contrast(background, text_color(background)) >= 4.5  # WCAG AA for normal text
    assert all(contrast(c, text_color(c)) >= 4.5 for c in motif_colors(60))


def test_a_corrupt_file_gives_one_message_not_hyperspys_report_line(tmp_path):
    """HyperSpy logs "please report this error" for a file it cannot read; motiflab.load says it once, itself."""
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("hyperspy.io")
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    try:
        bad = tmp_path / "frame.tif"
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        with pytest.raises(InputFileError, match="could not read"):
            io.load(bad)
        assert not [r for r in records if r.levelno >= logging.ERROR]
        import hyperspy.api as hs

        with pytest.raises(Exception):
            hs.load(str(bad))  # HyperSpy's own call still logs as HyperSpy does
        assert [r for r in records if r.levelno >= logging.ERROR]
    finally:
        logger.removeHandler(handler)
