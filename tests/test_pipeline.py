"""End-to-end accuracy on ground truth: image → columns → Zernike → FR layout → motifs.

Truth classes for rotation-sensitive features (rotinv off) are orientation-resolved
(``oriented_classes``): with signed moments the three orientations of a metal next to
one vacancy are three different motifs by construction.
"""
import numpy as np
import pytest

import motiflab
from motiflab.datasets import make_tmd, oriented_classes, tmd_neighbor_cells
from motiflab.metrics import best_match_f1, clustering_scores, match_columns

GOOD_DOSE = 200  # mean detected electrons per pixel (see motiflab.datasets)

pytestmark = pytest.mark.slow


def _planted_mo3():
    # three metal columns with all three Se neighbours missing one atom (Mo#3), far apart
    out = []
    for cell in [(-8, -8), (8, -4), (-4, 9), (10, 10), (-12, 3), (3, -13)]:
        out += [(c, "chalcogen", "Se1") for c in tmd_neighbor_cells(cell, "metal")]
    return out


def _sim(dose, seed=1):
    return make_tmd("MoSe2", shape=(512, 512), chalcogen_vacancy_rate=0.05, metal_vacancy_rate=0.005,
                    dopant="W", dopant_rate=0.02, defects=_planted_mo3(), dose=dose, seed=seed)


def _score(sim, an, oriented=True):
    m = match_columns(an.positions, sim.truth.positions, 1.5)
    ok = m.found_to_true >= 0
    truth = (oriented_classes(sim.truth) if oriented else sim.truth.fine)[m.found_to_true[ok]]
    return truth, an.motifs.labels[ok]


DEFECTS = ["Se1", "W", "Mo#1/a", "Mo#1/b", "Mo#1/c", "Mo#2/a", "Mo#2/b", "Mo#2/c", "Mo#3"]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for dose in (GOOD_DOSE, GOOD_DOSE / 20, None):
        sim = _sim(dose)
        out[dose] = (sim, motiflab.Analysis(sim.image, rotinv=False, seed=0).run())
    return out


@pytest.mark.parametrize("dose, ari_min, f1_min", [(GOOD_DOSE, 0.95, 0.9), (GOOD_DOSE / 20, 0.85, 0.7)])
def test_motifs_match_fine_truth(runs, dose, ari_min, f1_min):
    sim, an = runs[dose]
    truth, labels = _score(sim, an)
    assert clustering_scores(truth, labels)["ari"] >= ari_min
    # Classes with < 3 columns in this frame (a W dopant next to a vacancy, some Mo#2
    # orientations) cannot form a motif of their own; which neighbouring motif absorbs
    # them is arbitrary, and one such column flips an 11-column class's F1 from 0.92 to
    # 0.88. They are left out of the per-class scores (they still count in the ARI).
    cls_names, cls_counts = np.unique(truth, return_counts=True)
    scorable = np.isin(truth, cls_names[cls_counts >= 3])
    for cls in DEFECTS:
        n = int((truth == cls).sum())
        if n < 3:  # too rare in this frame to score (Mo#2 orientations are a few each)
            continue
        f1, _ = best_match_f1(truth[scorable], labels[scorable], cls)
        assert f1 >= f1_min, (cls, n, f1)
    # every defect family is actually present and scored
    assert all((truth == c).sum() >= 3 for c in ["Se1", "W", "Mo#1/a", "Mo#3"])


@pytest.mark.parametrize("dose", [GOOD_DOSE, None])
def test_no_over_splitting(runs, dose):
    sim, an = runs[dose]
    truth, labels = _score(sim, an)
    n_true = len([c for c in np.unique(truth) if not c.endswith("?")])
    assert an.motifs.n_motifs <= 2 * n_true, (an.motifs.n_motifs, n_true)


def test_class_averages_are_cleaner_than_single_patches(runs):
    sim, an = runs[GOOD_DOSE / 20]
    clean = _sim(None)
    an_clean = runs[None][1]
    truth, labels = _score(sim, an)
    # the largest motif's average vs. one of its members, both against the noise-free average
    k = 0
    ref = an_clean.motifs.class_averages[0]
    avg = an.motifs.class_averages[k]
    one = an.patches.patches[np.flatnonzero(an.motifs.labels == k)[0]]
    norm = lambda a: (a - a.mean()) / a.std()
    err_avg = np.abs(norm(avg) - norm(ref)).mean()
    err_one = np.abs(norm(one) - norm(ref)).mean()
    assert err_avg < 0.3 * err_one


@pytest.mark.parametrize("fraction", [20, 50])
def test_zernike_beats_pca_on_pixels_at_low_dose(fraction):
    """The paper's claim: Zernike + FR stays accurate at low dose where PCA on pixels does not."""
    from sklearn.decomposition import PCA

    from motiflab.layout import FRLayout
    from motiflab.motifs import find_motifs

    sim = _sim(GOOD_DOSE / fraction, seed=4)
    an = motiflab.Analysis(sim.image, rotinv=False, seed=0).run()
    truth, labels = _score(sim, an)
    fmi_zernike = clustering_scores(truth, labels)["fmi"]
    # same columns, same patches, same layout and clustering — only the features differ
    pix = an.patches.patches.reshape(len(an.positions), -1)
    Xp = PCA(66, random_state=0).fit_transform(pix).astype(np.float32)
    emb = FRLayout(random_state=0).fit_transform(Xp)
    mot = find_motifs(emb, an.patches.patches, features=Xp)
    m = match_columns(an.positions, sim.truth.positions, 1.5)
    ok = m.found_to_true >= 0
    fmi_pca = clustering_scores(truth, mot.labels[ok])["fmi"]
    assert fmi_zernike > fmi_pca, (fmi_zernike, fmi_pca)
