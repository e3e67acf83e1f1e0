"""Plain-language warnings when the detection or the motifs look wrong."""
import dataclasses

import numpy as np

from motiflab.analysis import Analysis
from motiflab.datasets import load_sample
from motiflab.diagnostics import detection_warnings


def test_a_good_analysis_has_no_warnings(mose2_small_analysis):
    assert detection_warnings(mose2_small_analysis) == []


def test_too_high_a_threshold_says_to_lower_it():
    an = Analysis(load_sample(dose_scale=0.02).image, threshold=15.0, lattice="off", n_iter=40)
    an.get("columns")
    notes = detection_warnings(an)
    assert len(notes) == 1 and "lower the threshold (now 15 σ)" in notes[0]
    assert notes[0].startswith(f"{an.columns.n_rejected} peaks")


def test_a_motif_off_the_lattice_is_named(mose2_small_analysis):
    an = mose2_small_analysis.copy()
    cols = an.columns
    on = np.asarray(cols.on_lattice).copy()
    k = an.motifs.n_motifs - 1  # the smallest motif
    on[an.patches.index[an.motifs.labels == k]] = False
    an.restore_stage("columns", dataclasses.replace(cols, on_lattice=on))
    notes = detection_warnings(an)
    assert any(n.startswith(f"motif #{k} ") and "off the crystal's lattice sites" in n for n in notes)
    assert f"warning: motif #{k}" in an.summary()
