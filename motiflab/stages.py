"""The stages of the method, one function each, as :class:`motiflab.Analysis` runs them.

Each ``compute_<stage>(an)`` reads the analysis' parameters and the results of
the stages before it (``an.get(...)``), calls the core function of that stage
with the keywords :mod:`motiflab.parameters` declares, and returns the stage's
result. The analysis object caches the results and decides what is stale; this
module only says how each stage is computed::

    columns → patch_size → patches → features → graph → layout → motifs → hierarchy
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from . import parameters
from .errors import MotifLabError

__all__ = ["Features", "Layout", "COMPUTE", "stage_kwargs", "layout_estimator"]


@dataclass
class Features:
    """Zernike features of the kept columns."""

    X: np.ndarray          # (N, J) float32
    n_max: int
    rotinv: bool


@dataclass
class Layout:
    """The FR layout with its recorded relaxation."""

    embedding: np.ndarray           # (N, 2) float32
    snapshots: np.ndarray           # (F, N, 2) float32
    snapshot_iterations: np.ndarray  # (F,)
    timings: dict


def stage_kwargs(params: dict, stage: str) -> dict:
    """The parameters of ``stage`` under the keywords its core function takes."""
    return {p.keyword or p.name: params[p.name] for p in parameters.SPEC if p.stage == stage}


def compute_columns(an):
    from .columns import find_columns

    kw = stage_kwargs(an.params, "columns")
    if kw["spacing"] is not None and kw["spacing"] > min(an.image.shape) / 2:
        raise MotifLabError(f"spacing {kw['spacing']:g} px is more than half the image {an.image.shape}; "
                            "give the distance between neighbouring columns in pixels, or None to measure it.")
    return find_columns(an.image, **kw)


def compute_patch_size(an):
    from .patches import PatchSizeEstimate, estimate_patch_size

    p = an.params
    cols = an.get("columns")
    if p["patch_size"] == "auto":
        if len(cols) < 3:
            raise MotifLabError(f"only {len(cols)} columns found; cannot estimate a patch size. "
                                "Give patch_size explicitly or lower the column threshold.")
        est = estimate_patch_size(cols.positions, shape=an.image.shape, scale=p["patch_scale"])
    else:
        est = PatchSizeEstimate(patch_size=int(p["patch_size"]), nn_distance=float(cols.spacing),
                                repeat_distance=float("nan"), r=np.zeros(0), g=np.zeros(0))
    if est.patch_size > min(an.image.shape):
        raise MotifLabError(f"patch size {est.patch_size} px is larger than the image {an.image.shape}; "
                            "use a smaller patch_size (or 'auto').")
    return est


def compute_patches(an):
    from .patches import extract_patches

    img = an.image
    cols = an.get("columns")
    if cols.inverted:
        img = (img.max() - img).astype(np.float32)
    # scale-free features: intensities in units of the image's robust spread (read from
    # at most a million pixels: the same numbers to a few parts in a thousand)
    sample = img.ravel()[:: max(1, img.size // 1_000_000)]
    med = float(np.median(sample))
    spread = float(np.percentile(sample, 99.5) - med) or 1.0
    norm = ((img - med) / spread).astype(np.float32)
    size = an.patch_size
    _check_patch_memory(len(cols), size)
    pt = extract_patches(norm, cols.positions, size, **stage_kwargs(an.params, "patches"))
    if len(pt.patches) == 0:
        raise MotifLabError("every column is too close to the border for the patch size; use a smaller "
                            "patch_size or patch_border='reflect'.")
    if cols.noise_model is not None:
        pt.evidence, pt.evidence_scale = evidence_patches(an.image, cols, pt, size)
    return pt


def _check_patch_memory(n, size):
    """Refuse a patch stack that cannot fit in memory, before allocating it."""
    from .memory import check_fits

    # the patches, their evidence copy and the features' working copy: about three float32 stacks
    check_fits(3 * 4 * n * size * size, f"{n} patches of {size}×{size} px",
               "use a smaller patch_size, or analyse the image in tiles (motiflab.batch over crops)")


def evidence_patches(image, cols, pt, patch_size):
    """The patches in units of the noise, for the motif stage's separation tests.

    Through the matched filter: a difference between motifs is column-sized,
    and pixel noise finer than a column only blurs the direction a small
    motif is told apart along (two motifs of 6 and 9 columns merged at
    d' 1.5 without it). The filtered image holds nothing finer than a column,
    so where a column is at least 1.5 px wide it is sampled at every second
    pixel (2x2 block means): a quarter of the data for every test.
    Returns the (M, Q, Q) stack and the pixels per evidence pixel.
    """
    from scipy import ndimage

    from .patches import extract_patches

    stab = cols.noise_model.stabilize(image)
    if cols.inverted:
        np.negative(stab, out=stab)
    sigma = float(cols.column_sigma) if np.isfinite(cols.column_sigma) else 0.0
    f = 2 if sigma >= 1.5 else 1
    pos = cols.positions[pt.index]
    if f > 1:
        h, w = (stab.shape[0] // f) * f, (stab.shape[1] // f) * f
        stab = stab[:h, :w]
        # block means by strided sums (a reshaped mean over two axes is several times slower)
        blocks = [stab[i::f, j::f] for i in range(f) for j in range(f)]
        stab = np.add.reduce(blocks, dtype=np.float32) / np.float32(f * f)
        # a small pixel covers f full pixels, its centre at f·i + (f - 1)/2
        pos = (pos - 0.5 * (f - 1)) / f
    if sigma > 0:
        # the matched filter, on the coarser grid (the block mean did a little of it)
        stab = ndimage.gaussian_filter(stab, float(np.sqrt(max(sigma**2 - (f**2 - 1) / 12.0, 0.25))) / f)
    size = patch_size // f
    size += 1 - size % 2  # odd: the column on the centre pixel
    ev = extract_patches(stab, pos, max(3, size), border="reflect", subpixel=True).patches
    return ev, float(f)


def compute_features(an):
    from .memory import check_fits
    from .zernike import zernike_moments

    kw = stage_kwargs(an.params, "features")
    n_moments = (kw["n_max"] + 1) * (kw["n_max"] + 2) // 2
    size = an.patch_size
    # the basis (float64) and the moments of every patch (float32, twice while they are made contiguous)
    check_fits(8 * n_moments * size * size + 8 * len(an.get("patches").patches) * n_moments,
               f"Zernike moments up to n_max={kw['n_max']} of {size}×{size} px patches",
               "use a smaller n_max (the paper's is 10) or patch_size")
    X = zernike_moments(an.get("patches").patches, **kw)
    return Features(X=np.ascontiguousarray(X, dtype=np.float32), n_max=kw["n_max"], rotinv=kw["rotinv"])


def compute_graph(an):
    from .neighbors import fuzzy_graph, knn_graph

    kw = stage_kwargs(an.params, "graph")
    X = an.get("features").X
    k = kw["n_neighbors"]
    if len(X) <= k + 1:
        raise MotifLabError(
            f"only {len(X)} columns were analysed; at least {k + 2} are needed for a {k}-nearest-"
            "neighbour graph (and many more to find motifs). Use a larger image or lower n_neighbors."
        )
    idx, dist = knn_graph(X, **kw)
    return fuzzy_graph(idx, dist)


def _layout_params(params: dict):
    """The layout stage's effective parameters and its two :class:`~motiflab.forces.ForceStage`."""
    from .forces import ForceStage

    eff = {k: parameters.effective_value(k, v) for k, v in params.items() if parameters.PARAM_STAGE[k] == "layout"}
    stages = tuple(ForceStage(eff[f"stage{i}_alpha"], eff[f"stage{i}_beta"], eff[f"stage{i}_n"], eff[f"stage{i}_m"],
                              learning_rate=eff[f"stage{i}_lr"]) for i in (1, 2))
    return eff, stages


def layout_kernel_flags(params: dict, n_points) -> list:
    """The FR drivers the layout stage will run on ``n_points`` (see :func:`motiflab._layout_kernels.driver_flags`).

    Answered without building the estimator, whose module imports
    scikit-learn (~0.5 s): :mod:`motiflab.warmup` asks before the first stage.
    """
    from ._layout_kernels import driver_flags
    from .forces import DEFAULT_FORCE_FORM

    _, stages = _layout_params(params)
    return driver_flags(stages, DEFAULT_FORCE_FORM, params["n_neighbors"], n_points)


def layout_estimator(params: dict, callback=None, verbose=False):
    """An unfitted :class:`motiflab.layout.FRLayout` configured from analysis parameters."""
    from .layout import FRLayout

    eff, stages = _layout_params(params)
    snap = int(eff["snapshot_max_mb"] * 2**20)
    return FRLayout(n_neighbors=params["n_neighbors"], negative_samples=eff["negative_samples"], stages=stages,
                    n_iter=eff["n_iter"], stage_split=eff["stage_split"], random_state=params["seed"],
                    snapshot_max_bytes=max(snap, 1), snapshot_every=0 if snap == 0 else None,
                    verbose=bool(verbose), callback=callback)


#: seconds per point, iteration and neighbour of the FR layout on one core (2048² image: 60k columns,
#: 200 iterations, 16 neighbours and negatives in about 4 s); an upper estimate
LAYOUT_SECONDS_PER_UPDATE = 2e-8


def compute_layout(an):
    from .memory import check_duration

    eff = an.effective_params()
    n = len(an.get("features").X)
    work = n * eff["n_iter"] * (eff["n_neighbors"] + eff["negative_samples"] + 1)
    check_duration(work * LAYOUT_SECONDS_PER_UPDATE, f"the FR layout of {n} columns with n_iter={eff['n_iter']}",
                   "use fewer iterations (n_iter; the default is 200) or negative_samples")
    est = an.layout_estimator()
    emb = est.fit_transform(an.get("features").X, graph=an.get("graph"))
    return Layout(embedding=np.asarray(emb, dtype=np.float32), snapshots=est.snapshots_,
                  snapshot_iterations=np.asarray(est.snapshot_iterations_), timings=dict(getattr(est, "timings_", {})))


def compute_motifs(an):
    from .motifs import find_motifs

    pt = an.get("patches")
    cols = an.get("columns")
    feats = an.get("features")
    rotations = 1
    if feats.rotinv:
        from .lattice import rotation_order

        # orientation is what rotation invariance discards: the pixel-space
        # tests must not keep (or split) motifs by it; without a lattice, 12
        # rotations cover both square and hexagonal symmetry
        v = cols.lattice_vectors
        rotations = rotation_order(v[0], v[1]) if v is not None else 12
    neighbours = None
    if pt.evidence is not None and an.params["min_separation"] > 0:
        from .separation import neighbour_table

        neighbours = an.derived("patches", "neighbour_table", lambda: neighbour_table(an.positions))
    motifs = find_motifs(an.get("layout").embedding, pt.patches, **stage_kwargs(an.params, "motifs"),
                         features=feats.X, evidence=pt.evidence,
                         spacing=cols.spacing / pt.evidence_scale, column_sigma=cols.column_sigma / pt.evidence_scale,
                         positions=an.positions, rotations=rotations, random_state=an.params["seed"],
                         lattice_vectors=cols.lattice_vectors, evidence_scale=pt.evidence_scale,
                         neighbours=neighbours)
    if an.edits:
        from .curation import apply_edits

        motifs = apply_edits(motifs, an.edits, an)
    return motifs


def compute_hierarchy(an):
    """The motif-cell hierarchy of the current motifs.

    One label policy for every caller (command line, explorer, report): an
    unassigned column (label −1) keeps its own label, so a cell holding one is
    never mistaken for a cell with a vacancy. Warnings of the construction
    (every cell alike, a small host) become notes of the result.
    """
    from .hierarchy import build_hierarchy

    n = len(an.positions)
    limit = an.params["hierarchy_max_columns"]
    if n > limit:
        raise MotifLabError(f"the hierarchy is built up to hierarchy_max_columns={limit} columns and this image has "
                            f"{n}; raise hierarchy_max_columns to build it anyway.")
    labels = an.get("motifs").labels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = build_hierarchy(an.positions, labels, **{k: v for k, v in stage_kwargs(an.params, "hierarchy").items()
                                                     if k != "hierarchy_max_columns"})
    for w in caught:
        note = str(w.message)
        if note not in h.notes:
            h.notes.append(note)
    return h


#: The modules each stage imports when it first runs (the layout's and the motifs':
#: scikit-learn, ~0.5 s with the scipy.stats it imports). :meth:`motiflab.Analysis.get`
#: imports those of the coming stages while it waits for kernels a compile helper is building.
STAGE_MODULES = {
    "columns": ("motiflab.columns",),
    "patch_size": ("motiflab.patches",),
    "patches": ("motiflab.patches",),
    "features": ("motiflab.zernike",),
    "graph": ("motiflab.neighbors",),
    "layout": ("motiflab.layout",),
    "motifs": ("motiflab.motifs", "hdbscan"),
    "hierarchy": ("motiflab.hierarchy",),
}


def import_stage_modules(stages) -> None:
    """Import the modules ``stages`` will use (:data:`STAGE_MODULES`); any already imported cost nothing."""
    import importlib

    for stage in stages:
        for name in STAGE_MODULES.get(stage, ()):
            importlib.import_module(name)


#: how each stage is computed, in order
COMPUTE = {
    "columns": compute_columns, "patch_size": compute_patch_size, "patches": compute_patches,
    "features": compute_features, "graph": compute_graph, "layout": compute_layout, "motifs": compute_motifs,
    "hierarchy": compute_hierarchy,
}
assert tuple(COMPUTE) == parameters.STAGES == tuple(STAGE_MODULES)
