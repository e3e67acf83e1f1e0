"""A real experimental image: ADF-STEM of Se-implanted monolayer MoS₂ (temul-toolkit's example data).

The image (1024², 0.0127 nm/px) ships with temul-toolkit, installed with the
test extra and read from the installed package (GPL-3: never copied here).
Everything is judged against a lattice fitted to the detections themselves:
detections in the hollows of the honeycomb would be background maxima, and
every Mo and S site of the fitted lattice should hold a detection.
"""
import numpy as np
import pytest

import motiflab


def _example_path():
    try:
        from importlib.metadata import PackageNotFoundError, files
    except ImportError:  # pragma: no cover
        pytest.skip("importlib.metadata unavailable")
    try:
        hits = [f for f in files("temul-toolkit") or () if str(f).endswith("example_Se_implanted_MoS2.dm3")]
    except PackageNotFoundError:
        pytest.skip("temul-toolkit is not installed (pip install -e '.[test]')")
    if not hits:
        pytest.skip("temul-toolkit installed without its example data")
    return hits[0].locate()


@pytest.fixture(scope="module")
def mos2():
    s = motiflab.load(str(_example_path()))
    an = motiflab.Analysis(s, seed=0).run()
    from motiflab.lattice import find_lattice

    lat = find_lattice(an.columns.positions)
    return an, lat


def _periodic_distance(frac, sites, M):
    d = frac[:, None, :] - np.asarray(sites)[None, :, :]
    d -= np.round(d)
    return np.linalg.norm(d @ M.T, axis=-1)


def test_calibration_is_read(mos2):
    an, _ = mos2
    assert an.calibration.units == "nm"
    assert an.calibration.scale == pytest.approx(0.0127, rel=0.01)


def test_no_detections_in_the_hollows_of_the_honeycomb(mos2):
    an, lat = mos2
    M = np.column_stack([lat.u, lat.v])
    assert len(lat.basis) == 2  # Mo and S₂
    # the hollow: the point of the cell farthest from both sites
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101), indexing="ij"), -1).reshape(-1, 2)
    hollow = grid[np.argmax(_periodic_distance(grid, lat.basis, M).min(1))]
    frac = (an.columns.positions - lat.origin) @ np.linalg.inv(M).T
    in_hollow = _periodic_distance(frac, hollow[None], M)[:, 0] < 0.25 * an.columns.spacing
    assert in_hollow.sum() <= 0.002 * len(frac), in_hollow.sum()


def test_every_lattice_site_is_found(mos2):
    an, lat = mos2
    from scipy.spatial import cKDTree

    M = np.column_stack([lat.u, lat.v])
    h, w = an.image.shape
    corners = (np.array([[0, 0], [0, w], [h, 0], [h, w]]) - lat.origin) @ np.linalg.inv(M).T
    lo, hi = np.floor(corners.min(0)).astype(int) - 1, np.ceil(corners.max(0)).astype(int) + 1
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = np.column_stack([ii.ravel(), jj.ravel()])
    sites = np.vstack([lat.origin + (cells + b) @ M.T for b in lat.basis])
    m = 10
    sites = sites[(sites[:, 0] >= m) & (sites[:, 0] < h - m) & (sites[:, 1] >= m) & (sites[:, 1] < w - m)]
    d, _ = cKDTree(an.columns.positions).query(sites)
    # all but a pore a few cells wide (where there are no atoms) and a handful more
    assert np.mean(d < 0.35 * an.columns.spacing) >= 0.99


def test_motif_count_is_bounded_and_the_sublattices_dominate(mos2):
    an, _ = mos2
    m = an.motifs
    assert 2 <= m.n_motifs <= 8, m.counts
    assert m.counts[:2].sum() >= 0.95 * m.counts.sum()


def test_se_substituted_chalcogen_columns_form_a_motif_of_their_own(mos2):
    """Brighter columns on the S₂ sublattice (Se for S): a motif, not a tail of the S₂ motif."""
    an, lat = mos2
    M = np.column_stack([lat.u, lat.v])
    labels = an.motifs.labels
    inten = an.columns.intensity[an.patches.index]
    frac = (an.positions - lat.origin) @ np.linalg.inv(M).T
    site = _periodic_distance(frac, lat.basis, M).argmin(1)
    # the S₂ motif: the large motif on the dimmer sublattice
    big = [0, 1]
    means = [np.median(inten[labels == k]) for k in big]
    s2 = big[int(np.argmin(means))]
    chalcogen_site = np.bincount(site[labels == s2]).argmax()
    found = []
    for k in range(2, an.motifs.n_motifs):
        sel = labels == k
        if sel.sum() >= 20 and np.mean(site[sel] == chalcogen_site) > 0.9 \
                and np.median(inten[sel]) >= 1.5 * np.median(inten[labels == s2]):
            found.append(k)
    assert found, [(k, int((labels == k).sum()), float(np.median(inten[labels == k])))
                   for k in range(an.motifs.n_motifs)]
