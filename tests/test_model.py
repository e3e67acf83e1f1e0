"""A learned motif model applied to new data (issue #15): placement, labels, novelty, files, command line.

Ground truth comes from :func:`motiflab.datasets.make_tmd`; columns are found by
motiflab and matched to the truth as in ``test_motif_accuracy.py``. A motif is
named by the truth class most of its training columns have.
"""
import collections
import subprocess
import sys

import numpy as np
import pytest

import motiflab
from motiflab import Analysis
from motiflab.datasets import make_tmd, oriented_classes
from motiflab.errors import InputFileError, MotifLabError
from motiflab.metrics import match_columns
from motiflab.model import NEW

DOSE = 100 / 3.237  # ~100 counts per Mo peak


def _image(seed, rate):
    return make_tmd("MoSe2", shape=(384, 384), chalcogen_vacancy_rate=rate, dose=DOSE, seed=seed)


def _truth(positions, sim):
    """Truth class of every column (None where no true column is within 2 px)."""
    m = match_columns(positions, sim.truth.positions, tol=2.0)
    classes = oriented_classes(sim.truth)
    return np.where(m.found_to_true >= 0, classes[np.maximum(m.found_to_true, 0)], None)


@pytest.fixture(scope="module")
def defective():
    """A model trained on an image with Se vacancies (Se1, Mo#1/a-c motifs present)."""
    sim = _image(21, 0.04)
    an = Analysis(sim.image, seed=0).run()
    return an, an.model(), _truth(an.positions, sim)


@pytest.fixture(scope="module")
def pristine():
    """A model trained on a defect-free image: only the Mo and Se2 motifs."""
    sim = _image(1, 0.0)
    an = Analysis(sim.image, seed=0).run()
    return an, an.model()


def _motif_names(labels, truth):
    return {k: collections.Counter(truth[(labels == k) & (truth != None)]).most_common(1)[0][0]  # noqa: E711
            for k in np.unique(labels[labels >= 0])}


def test_held_back_columns_land_in_their_motif(defective):
    """Columns of another image of the same sample (none seen in training): >= 98 % in the right motif."""
    an, model, truth = defective
    names = _motif_names(an.motifs.labels, truth)
    assert {"Mo", "Se2", "Se1"} <= set(names.values())
    sim = _image(5, 0.04)
    res = model.classify(sim.image)
    t = _truth(res.positions, sim)
    ok = t != None  # noqa: E711
    pred = np.array([names.get(int(k), "new") for k in res.motifs.labels])
    acc = float(np.mean(pred[ok] == t[ok]))
    print(f"held-back accuracy {acc:.4f} on {ok.sum()} columns")
    assert acc >= 0.98
    # the result has the analysis' attribute names, motif numbers of the model
    assert res.motifs.n_motifs == model.n_motifs and len(res.motifs.labels) == len(res.positions)
    assert res.novel.shape == res.motifs.labels.shape and res.layout.embedding.shape == (len(res.positions), 2)


def test_transform_of_training_features_gives_the_fitted_labels(defective):
    an, model, _ = defective
    pred = model.predict(an.features.X)
    assert np.array_equal(pred.labels, an.motifs.labels) and not pred.novel.any()
    assert np.array_equal(model.layout().transform(an.features.X), an.layout.embedding)
    # not only exact copies: features moved by far less than the noise land with their column
    X = an.features.X + 1e-3 * np.random.default_rng(0).standard_normal(an.features.X.shape).astype(np.float32)
    pred = model.predict(X)
    agree = float(np.mean(pred.labels == an.motifs.labels))
    print(f"perturbed training features: {agree:.4f} keep their label")
    assert agree >= 0.99


def test_columns_of_a_class_absent_from_training_are_flagged_new(pristine):
    an, model = pristine
    assert model.n_motifs == 2
    sim = _image(21, 0.04)
    res = model.classify(sim.image)
    t = _truth(res.positions, sim)
    absent = (t != None) & ~np.isin(t, ["Mo", "Se2"])  # noqa: E711
    recall = float(np.mean(res.novel[absent]))
    print(f"new-class recall {recall:.3f} over {absent.sum()} columns ({collections.Counter(t[absent])})")
    assert recall >= 0.9
    assert np.all(res.motifs.labels[res.novel] == NEW)
    # and on a defect-free image almost nothing is new
    clean = model.classify(_image(7, 0.0).image)
    fp = float(np.mean(clean.novel))
    print(f"flagged new on a defect-free image: {fp:.4f}")
    assert fp <= 0.01


def test_saved_model_gives_the_same_labels_in_a_fresh_process(defective, tmp_path):
    _, model, _ = defective
    img = tmp_path / "new.npy"
    np.save(img, _image(5, 0.04).image)
    path = model.save(tmp_path / "M.hspy")
    with pytest.raises(InputFileError, match="already exists"):
        model.save(path)
    here = model.classify(str(img)).motifs.labels
    code = ("import sys, numpy as np, motiflab; m = motiflab.load_model(sys.argv[1]); "
            "np.save(sys.argv[3], m.classify(sys.argv[2]).motifs.labels)")
    out = tmp_path / "labels.npy"
    subprocess.run([sys.executable, "-c", code, str(path), str(img), str(out)], check=True, timeout=300)
    assert np.array_equal(np.load(out), here)
    loaded = motiflab.load_model(path)
    assert loaded.saved_with["motiflab"] == motiflab.__version__ and "numpy" in loaded.saved_with["versions"]
    assert loaded.params == model.params and loaded.edits == model.edits
    np.testing.assert_array_equal(loaded.class_averages, model.class_averages)


def test_model_keeps_curation_edits(tmp_path):
    sim = _image(21, 0.04)
    an = Analysis(sim.image, seed=0).run()
    an.edit({"kind": "merge", "motifs": [2, 3]})
    model = an.model()
    assert model.n_motifs == an.motifs.n_motifs and model.edits == an.edits
    assert np.array_equal(model.predict(an.features.X).labels, an.motifs.labels)
    loaded = motiflab.load_model(model.save(tmp_path / "curated.hspy"))
    assert loaded.edits == an.edits


def test_model_files_refuse_what_they_cannot_read(tmp_path, defective):
    _, model, _ = defective
    with pytest.raises(MotifLabError, match=".hspy"):
        model.save(tmp_path / "M.npz")
    with pytest.raises(InputFileError, match="no model file"):
        motiflab.load_model(tmp_path / "missing.hspy")
    plain = tmp_path / "image.hspy"
    motiflab.io.to_signal(np.zeros((8, 8), np.float32)).save(plain)
    with pytest.raises(InputFileError, match="no motiflab model"):
        motiflab.load_model(plain)
    junk = tmp_path / "junk.hspy"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputFileError, match="could not read"):
        motiflab.load_model(junk)


def test_cli_save_model_then_apply_it(tmp_path):
    from motiflab.cli import main

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, _image(21, 0.04).image)
    np.save(b, _image(5, 0.04).image)
    m = tmp_path / "M.hspy"
    assert main(["run", str(a), "--out", str(tmp_path / "ra.npz"), "--save-model", str(m), "-q"]) == 0
    assert main(["run", str(b), "--out", str(tmp_path / "rb.npz"), "--model", str(m), "-q"]) == 0
    labels = np.load(tmp_path / "rb.npz")["labels"]
    assert np.array_equal(labels, motiflab.load_model(m).classify(str(b)).motifs.labels)
    # a model is never an output, and the two options exclude each other
    assert main(["run", str(b), "--out", str(tmp_path / "rc.npz"), "--model", str(m), "--save-model", str(m),
                 "-q"]) == 2
