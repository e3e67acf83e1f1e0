"""Large single images (mosaics) in tiles: issue #15 part 4.

:func:`analyse_tiled` finds the columns of an image too large for one
in-memory analysis tile by tile, and labels them with a motif model fitted on a
stated sample of them. Each tile task reads one window of the image, so a lazy
(Dask) image or HyperSpy signal is never loaded whole; the tasks run on any
Dask scheduler (the default threads, ``scheduler="processes"``, or a
``distributed.Client`` made before the call).

How a tiled run equals the in-memory one
----------------------------------------
1. **Image-wide decisions, measured once** on a stated *scale region*: the
   central ``scale_region``² square of the image (the whole image when it is
   smaller). :func:`motiflab.columns.column_scales` runs the column finder there
   and returns what it decided for the whole region
   (:class:`motiflab.columns.ColumnScales`): the inversion, the lattice repeat,
   the column width, the noise model, the lattice vectors, the contrast of the
   brightest columns and the windows. The median offset is read from a strided
   sample of the *whole* image, exactly as the in-memory finder reads it. The
   finder's own autocorrelation, noise and lattice measurements already use
   central crops of at most 1024², so for a scale region of 2048² only the
   contrast reference and the nearest-neighbour windows are statistics of the
   region rather than the image (on a uniform crystal they agree to a small
   fraction of a percent).
2. **Tiles with a halo.** The image is cut into ``tile``² cores; each task reads
   its core plus a halo on every side (:func:`tile_halo`: the reach of every
   window the finder uses — the smoothing, the lattice average's farthest
   translation, the background window, the lattice sites' support and
   local-presence test, the refinement window — and at least one patch).
   Windows start on the coarse grids the finder block-averages on, so every
   pixel of a core sees exactly the numbers the whole image gives it.
3. **Seams.** A tile keeps the columns whose refined position lies in its core
   (cores tile the image without overlap, so each column is kept once), and the
   merged columns are put in the in-memory finder's order (peaks, then
   lattice-only sites, each row-major by the pixel they were found at).
4. **Motifs from a stated sample.** The central ``fit_region``² square is
   analysed in memory with the tiled columns' settings (an ordinary
   :class:`motiflab.Analysis` whose columns come from the same scales), and its
   motifs are frozen into a :class:`motiflab.model.MotifModel`. Every column of
   every tile is then cut into a patch (normalised like the fit region's),
   described by its Zernike moments and placed into the fitted layout with
   :meth:`motiflab.model.MotifModel.predict` (:meth:`motiflab.layout.FRLayout.place`),
   in the same tile task. Class averages are summed per tile.

Not equal to the in-memory run: the finder's ``1e-12 × max|image|`` noise floor
is per tile (it never binds on real data), and ``n_candidates`` counts the
candidate maxima in the cores (those in the ``border`` strip are left out).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import MotifLabError

__all__ = ["TiledResult", "analyse_tiled", "find_columns_tiled", "tile_halo", "tile_cores"]

#: default side of the central square the image-wide scales are measured on (px)
SCALE_REGION = 2048
#: default side of the central square whose columns train the motif model (px)
FIT_REGION = 1024
#: a tile's column within this distance (px) of a training column is that column: the Gaussian
#: fit's stopping rule moves a few positions by ~1e-5 px with the frame they are computed in
_SAME_COLUMN = 0.01


# --------------------------------------------------------------------------- input


def _as_2d(data):
    """A NumPy or Dask 2-D array from an array, a Dask array or a (lazy) HyperSpy signal; never loaded whole."""
    if hasattr(data, "axes_manager") and hasattr(data, "data"):  # HyperSpy signal, lazy or not
        data = data.data
    if isinstance(data, (str, bytes)) or data is None:
        raise MotifLabError(f"image must be a 2-D array, a Dask array or a HyperSpy signal, got {type(data).__name__}; "
                            "open a file with motiflab.load(path, lazy=True) first.")
    if not hasattr(data, "dask"):
        data = np.asarray(data)
    if data.dtype == object or data.dtype.kind not in "fiub":
        raise MotifLabError(f"image must be a real numeric array, got dtype {data.dtype}.")
    if data.ndim != 2:
        raise MotifLabError(f"image has shape {tuple(data.shape)}; a tiled run takes one 2-D image (rows, columns).")
    return data


def _float32(a):
    """A window as :class:`motiflab.Analysis` holds its image: float32 (the finder works on that)."""
    return np.ascontiguousarray(np.asarray(a.compute() if hasattr(a, "compute") else a), dtype=np.float32)


def _window(data, r0, r1, c0, c1):
    """Pixels ``[r0:r1, c0:c1]`` as a float32 NumPy array (computed, for a Dask array)."""
    return _float32(data[r0:r1, c0:c1])


def _median_offset(data) -> float:
    """The median the in-memory finder removes from the float32 image: the same strided sample, read lazily."""
    h, w = data.shape
    step = max(1, (h * w) // 500_000)
    flat = np.arange(0, h * w, step)
    if hasattr(data, "vindex"):
        sample = np.asarray(data.vindex[flat // w, flat % w].compute())
    else:
        sample = np.asarray(data).ravel()[::step]
    sample = sample.astype(np.float32).astype(np.float64)
    return float(np.median(sample)) if sample.size and np.isfinite(sample).all() else 0.0


def _central(shape, side):
    """(r0, r1, c0, c1) of the central ``side``² square (the whole extent along a shorter axis)."""
    h, w = shape
    sh, sw = min(h, side), min(w, side)
    # the same centring the finder's central crops use, so the crops of a region centred
    # like this are the crops of the whole image
    r0, c0 = (h - sh) // 2, (w - sw) // 2
    return r0, r0 + sh, c0, c0 + sw


# --------------------------------------------------------------------------- geometry


def tile_halo(scales, patch_size: int = 0) -> int:
    """The halo (px) a tile needs so that its core's columns equal the whole image's.

    The sum of the reaches of the finder's windows that feed one another, from
    the raw pixels to a column's refined position: the matched filter
    (4σ), the lattice average of the background map (the farthest lattice
    translation), the background window (1.25 repeats), the lattice average of
    the significance map (the 48 nearest translations), the site maximum, the
    site support (the farthest translation) or the local-presence mean
    (4 × 0.6 repeats), and the refinement windows; at least half a patch plus
    two pixels.

    Parameters
    ----------
    scales : motiflab.columns.ColumnScales
    patch_size : int
        Patch side the motif stage cuts around each column.

    Returns
    -------
    int
    """
    from .sites import lattice_translations

    sigma, repeat, nn = float(scales.column_sigma), float(scales.repeat), float(scales.spacing)
    t_far = t_near = 0.0
    if scales.lattice_vectors is not None:
        T = lattice_translations(*np.asarray(scales.lattice_vectors, float))
        if len(T):
            d = np.hypot(*T.T)
            t_far, t_near = float(d.max()), float(d[: max(8, min(len(T), 48))].max())
    factor = int(np.clip(round(sigma), 2, 4)) if sigma >= 1.0 else 1
    reach = 0.6 * repeat
    f = int(max(1, reach // 2))
    r_max = max(1.0, min(repeat / 4.0, sigma))
    zmap = int(4 * sigma + 0.5) + 1 + t_far + round(1.25 * repeat) + 2 * factor
    sites = t_near + 3 + 2 * r_max + max(t_far, 4.0 * reach + 2 * f)
    refine = 1.25 * nn + 0.5 * nn + 2
    halo = int(np.ceil(zmap + sites + refine)) + 8
    return max(halo, patch_size // 2 + 2)


def _alignment(scales) -> int:
    """Window origins are multiples of this: the coarse grids the finder and the evidence patches block-average on."""
    sigma, repeat = float(scales.column_sigma), float(scales.repeat)
    factor = int(np.clip(round(sigma), 2, 4)) if sigma >= 1.0 else 1
    f = int(max(1, (0.6 * repeat) // 2))
    return int(np.lcm.reduce([factor, f, 2]))


def tile_cores(shape, tile: int):
    """The ``(r0, r1, c0, c1)`` cores of ``tile``² tiles covering an image of ``shape``, row by row."""
    h, w = shape
    return [(r, min(r + tile, h), c, min(c + tile, w)) for r in range(0, h, tile) for c in range(0, w, tile)]


def _read_window(core, halo, align, shape):
    r0, r1, c0, c1 = core
    h, w = shape
    # origins on the finder's coarse grids; the far ends need no alignment (their remainder
    # rows lie in the halo, which the core never reads)
    wr0, wc0 = (max(0, r0 - halo) // align) * align, (max(0, c0 - halo) // align) * align
    return wr0, min(h, r1 + halo), wc0, min(w, c1 + halo)


# --------------------------------------------------------------------------- the tile task


def _tile_task(window, origin, core, shape, scales, finder_kw, motif_kw, train):
    """Columns (and, with ``motif_kw``, motifs) of one tile's core, in whole-image coordinates."""
    from .columns import find_columns

    out = {}
    o = np.asarray(origin, float)
    window = _float32(window)
    try:
        cols = find_columns(window, scales=scales, _record=out, **finder_kw)
    except MotifLabError as exc:
        if "no atom columns found" not in str(exc):
            raise
        return None  # a tile of vacuum: nothing to keep
    r0, r1, c0, c1 = core
    g = cols.positions + o
    inside = (g[:, 0] >= r0) & (g[:, 0] < r1) & (g[:, 1] >= c0) & (g[:, 1] < c1)
    rej = cols.rejected_positions + o
    rej_in = (rej[:, 0] >= r0) & (rej[:, 0] < r1) & (rej[:, 1] >= c0) & (rej[:, 1] < c1)
    res = dict(positions=g[inside], intensity=cols.intensity[inside], quality=cols.quality[inside],
               support=cols.support[inside], on_lattice=cols.on_lattice[inside],
               seed=out["seed_pixels"][inside] + np.asarray(origin), from_lattice=out["from_lattice"][inside],
               rejected_positions=rej[rej_in], rejected_quality=cols.rejected_quality[rej_in])
    if motif_kw is not None:
        res.update(_tile_motifs(window, cols.positions[inside], o, motif_kw, train))
    return res


def _tile_motifs(window, local_positions, origin, kw, train):
    """Patches, Zernike features, placement into the model and per-motif patch sums of one tile's columns.

    ``train`` holds the fit region's columns that fall in this window (global
    positions, row in the model): those are the training columns themselves and
    keep their fitted labels and places (what placing an exact copy of a training
    feature gives; the Zernike moments of one patch differ in their last bits
    with the size of the batch they are computed in, so the copy is found by position).
    """
    from scipy.spatial import cKDTree

    from .patches import extract_patches
    from .zernike import zernike_moments

    img = np.asarray(window, np.float32)
    if kw["inverted"]:
        img = (np.float32(kw["max"]) - img).astype(np.float32)
    norm = ((img - kw["median"]) / kw["spread"]).astype(np.float32)
    model = kw["model"]
    k = model.n_motifs
    p = model.patch_size
    pt = extract_patches(norm, local_positions, p, **kw["patch_kw"])
    n = len(local_positions)
    labels = np.full(n, -1, np.int64)
    novel = np.zeros(n, bool)
    confidence = np.zeros(n, np.float32)
    novelty = np.zeros(n, np.float32)
    embedding = np.full((n, 2), np.nan, np.float32)
    sums = np.zeros((k, p, p), np.float64)
    counts = np.zeros(k, np.int64)
    if len(pt.patches):
        X = zernike_moments(pt.patches, **kw["feature_kw"])
        pred = model.predict(np.ascontiguousarray(X, np.float32))
        i = pt.index
        labels[i], novel[i], confidence[i], novelty[i], embedding[i] = (pred.labels, pred.novel, pred.confidence,
                                                                         pred.novelty, pred.embedding)
        tpos, trow = train
        if len(tpos):
            d, j = cKDTree(tpos).query(local_positions[i] + origin, distance_upper_bound=_SAME_COLUMN)
            hit = np.isfinite(d)
            row = trow[j[hit]]
            ih = i[hit]
            labels[ih], novel[ih], confidence[ih], novelty[ih] = model.labels[row], False, 1.0, 0.0
            embedding[ih] = model.embedding[row]
        lab = labels[i]
        ok = lab >= 0
        np.add.at(sums, lab[ok], pt.patches[ok].astype(np.float64))
        counts += np.bincount(lab[ok], minlength=k)
    has_patch = np.zeros(n, bool)
    has_patch[pt.index] = True
    return dict(labels=labels, novel=novel, confidence=confidence, novelty=novelty, embedding=embedding,
                has_patch=has_patch, sums=sums, counts=counts)


def _compute(tasks, scheduler, progress):
    """Run delayed tasks on ``scheduler`` (None: Dask's default, a ``distributed.Client`` if one is active)."""
    import dask

    if scheduler is None:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):
            client = None
        if client is not None:
            futures = client.compute(tasks)
            if progress:
                from distributed import progress as dprogress

                dprogress(futures)
            return client.gather(futures)
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks, scheduler=scheduler))
    return list(dask.compute(*tasks, scheduler=scheduler))


# --------------------------------------------------------------------------- public


@dataclass
class TiledResult:
    """An image analysed in tiles: its columns and their motifs (the parts of an :class:`~motiflab.Analysis` result).

    Attributes
    ----------
    columns : motiflab.columns.Columns
        Every column, merged over the tiles in the in-memory finder's order.
    analysed : ndarray (N,) bool
        Columns with a patch (the others are too close to the image border).
    labels : ndarray (M,) int64
        Motif of each analysed column (model numbers; −1 unassigned, −2 new).
    class_averages : ndarray (K, P, P) float32
    counts : ndarray (K,) int64
    embedding, confidence, novelty : ndarray
        Each analysed column's place in the model's layout, vote confidence and
        novelty score (see :class:`motiflab.model.Prediction`).
    novel : ndarray (M,) bool
    model : motiflab.model.MotifModel or None
        The model fitted on ``fit_region``.
    scales : motiflab.columns.ColumnScales
    scale_region, fit_region : tuple (r0, r1, c0, c1)
        Where the image-wide scales were measured and the model was fitted.
    tile, halo : int
    timings : dict
        Seconds per step.
    """

    columns: object
    scales: object
    scale_region: tuple
    tile: int
    halo: int
    analysed: np.ndarray | None = None
    labels: np.ndarray | None = None
    class_averages: np.ndarray | None = None
    counts: np.ndarray | None = None
    embedding: np.ndarray | None = None
    confidence: np.ndarray | None = None
    novelty: np.ndarray | None = None
    novel: np.ndarray | None = None
    model: object = None
    fit_region: tuple | None = None
    timings: dict = field(default_factory=dict)

    @property
    def positions(self) -> np.ndarray:
        """(M, 2) positions of the analysed columns (all columns before the motif step)."""
        pos = self.columns.positions
        return pos if self.analysed is None else pos[self.analysed]

    @property
    def n_motifs(self) -> int:
        return 0 if self.counts is None else len(self.counts)


def _check_tile(tile, name="tile"):
    try:
        t = int(tile)
    except (TypeError, ValueError, OverflowError):
        raise MotifLabError(f"{name} must be a whole number of pixels, got {tile!r}.") from None
    if t != tile or t < 64:
        raise MotifLabError(f"{name} must be a whole number of pixels ≥ 64, got {tile!r}.")
    return t


def _params(params):
    from . import parameters

    full = dict(parameters.DEFAULTS)
    full.update(parameters.validate_all(params))
    return full


def _measure_scales(data, full, scale_region):
    """Scales from the central region, with the whole image's offset (:mod:`motiflab.columns`)."""
    from .columns import column_scales
    from .stages import stage_kwargs

    from .image_checks import power_of_two_gain

    region = _central(data.shape, scale_region)
    img = _window(data, *region)
    lo, hi = float(img.min()), float(img.max())
    if power_of_two_gain(img) != 1.0 or (hi > lo and max(abs(lo), abs(hi)) > 2.0**16 * (hi - lo)):
        raise MotifLabError(f"the image's values ({lo:.3g} … {hi:.3g}) need rescaling or an offset removed before a "
                            "tiled run (a constant factor or offset does not change the columns), e.g. "
                            "image = (image - median) / spread * 1000.")
    _, scales = column_scales(img, **stage_kwargs(full, "columns"))
    offset = _median_offset(data)
    if offset != scales.offset:
        # every tile subtracts the whole image's median, as the in-memory finder does; the
        # noise model (a function of the level) is moved to that frame
        s = -1.0 if scales.inverted else 1.0
        scales = replace(scales, offset=offset, noise=scales.noise.in_frame(1.0, s * (offset - scales.offset)))
    return region, scales


def find_columns_tiled(image, tile=1024, halo=None, scale_region=SCALE_REGION, scheduler=None, progress=False,
                       **params):
    """The columns of a large image, found tile by tile; equal to the in-memory finder's.

    Takes the parameters of :func:`analyse_tiled` except ``fit_region``, and
    stops after the columns.

    Returns
    -------
    TiledResult
        Only :attr:`TiledResult.columns` and the geometry are set.
    """
    return _run(image, tile, halo, scale_region, None, scheduler, progress, params)


def analyse_tiled(image, tile=1024, halo=None, scale_region=SCALE_REGION, fit_region=FIT_REGION, scheduler=None,
                  progress=False, **params):
    """Columns and motifs of a large image (a mosaic) in tiles, on Dask.

    Columns are found per tile with the image-wide scales measured once on the
    central ``scale_region``² square, kept in each tile's core, merged; the
    motifs are fitted in memory on the columns of the central
    ``fit_region``² square (a :class:`motiflab.model.MotifModel`, seeded by
    ``seed``) and every column is placed into that model's layout
    (:meth:`motiflab.layout.FRLayout.place`) in its tile's task. See the module
    notes for why the columns equal the in-memory finder's.

    Parameters
    ----------
    image : ndarray, dask array or hyperspy Signal2D (lazy or not)
        One 2-D image of any size.
    tile : int
        Side of a tile's core (px, ≥ 64).
    halo : int, optional
        Pixels read around each core; default :func:`tile_halo`.
    scale_region : int
        Side of the central square the image-wide scales are measured on.
    fit_region : int
        Side of the central square whose columns the motif model is fitted on
        (the whole image when it is smaller).
    scheduler : str, optional
        Dask scheduler; by default Dask's, or the active ``distributed.Client``.
    progress : bool
        Dask's progress bar over the tiles.
    **params
        Any :class:`motiflab.Analysis` parameter (``seed``, ``threshold``…).

    Returns
    -------
    TiledResult

    Raises
    ------
    MotifLabError
        For a bad image or parameter, or when the fit region has no motif.
    """
    fit_region = _check_tile(fit_region, "fit_region")
    return _run(image, tile, halo, scale_region, fit_region, scheduler, progress, params)


def _run(image, tile, halo, scale_region, fit_region, scheduler, progress, params):
    import dask

    from .columns import Columns, find_columns
    from .stages import stage_kwargs

    data = _as_2d(image)
    tile = _check_tile(tile)
    scale_region = _check_tile(scale_region, "scale_region")
    full = _params(params)
    finder_kw = stage_kwargs(full, "columns")
    timings = {}

    t0 = time.perf_counter()
    region, scales = _measure_scales(data, full, scale_region)
    timings["scales"] = time.perf_counter() - t0

    motif_kw, fit = None, None
    if fit_region is not None:
        from .analysis import Analysis

        t0 = time.perf_counter()
        fit = _central(data.shape, fit_region)
        crop = _window(data, *fit)
        an = Analysis(crop, **params)
        # the training columns: this square's, under the whole image's decisions
        an.restore_stage("columns", find_columns(an.image, scales=scales, **finder_kw))
        model = an.model()
        train_pos = an.positions + np.array([fit[0], fit[2]], float)
        img = an.image
        maxv = float(img.max())
        if scales.inverted:
            img = (np.float32(maxv) - img).astype(np.float32)
        # the fit region's patch normalisation (motiflab.stages.compute_patches), for every tile:
        # features of the same column are then the same numbers wherever it is cut
        sample = img.ravel()[:: max(1, img.size // 1_000_000)]
        med = float(np.median(sample))
        spread = float(np.percentile(sample, 99.5) - med) or 1.0
        motif_kw = dict(model=model, inverted=scales.inverted, max=maxv, median=med, spread=spread,
                        patch_kw=stage_kwargs(an.params, "patches"), feature_kw=stage_kwargs(an.params, "features"))
        timings["fit"] = time.perf_counter() - t0

    halo_px = tile_halo(scales, motif_kw["model"].patch_size if motif_kw else 0)
    if halo is not None:
        try:
            halo = int(halo)
        except (TypeError, ValueError, OverflowError):
            raise MotifLabError(f"halo must be a whole number of pixels (or None), got {halo!r}.") from None
        if halo < halo_px:
            raise MotifLabError(f"halo {halo} px is less than the finder's reach here ({halo_px} px); the tiles "
                                "would not equal the whole image. Leave halo=None.")
        halo_px = halo
    align = _alignment(scales)

    t0 = time.perf_counter()
    cores = tile_cores(data.shape, tile)
    tasks = []
    # shared by every task: one copy in the graph (on a cluster, sent to each worker once)
    shared_scales = dask.delayed(scales, pure=True, traverse=False)
    shared_motif = dask.delayed(motif_kw, pure=True, traverse=False) if motif_kw is not None else None
    for core in cores:
        wr0, wr1, wc0, wc1 = _read_window(core, halo_px, align, data.shape)
        win = data[wr0:wr1, wc0:wc1]
        if not hasattr(win, "dask"):
            win = _float32(win)
        train = None
        if motif_kw is not None:
            r0, r1, c0, c1 = core
            near = ((train_pos[:, 0] >= r0 - 1) & (train_pos[:, 0] < r1 + 1) & (train_pos[:, 1] >= c0 - 1)
                    & (train_pos[:, 1] < c1 + 1))
            train = (train_pos[near], np.flatnonzero(near))
        tasks.append(dask.delayed(_tile_task, pure=True)(win, (wr0, wc0), core, data.shape, shared_scales, finder_kw,
                                                          shared_motif, train))
    parts = [p for p in _compute(tasks, scheduler, progress) if p is not None and len(p["positions"])]
    timings["tiles"] = time.perf_counter() - t0
    if not parts:
        raise MotifLabError("no atom columns found in any tile; check the image and the column-finding parameters.")

    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in ("sums", "counts")}
    # the in-memory finder's order: peaks, then lattice-only sites, each row-major by its pixel
    order = np.lexsort((cat["seed"][:, 1], cat["seed"][:, 0], cat["from_lattice"]))
    cat = {k: (v if k.startswith("rejected") else v[order]) for k, v in cat.items()}
    rorder = np.lexsort((cat["rejected_positions"][:, 1], cat["rejected_positions"][:, 0]))
    cols = Columns(positions=cat["positions"], intensity=cat["intensity"], prominence=cat["quality"],
                   spacing=float(scales.spacing), inverted=bool(scales.inverted), noise=float(scales.noise_std),
                   n_candidates=int(len(cat["positions"]) + len(cat["rejected_positions"])),
                   params=dict(finder_kw, tiled=dict(tile=tile, halo=halo_px, scale_region=region)),
                   quality=cat["quality"], support=cat["support"], on_lattice=cat["on_lattice"],
                   rejected_positions=cat["rejected_positions"][rorder],
                   rejected_quality=cat["rejected_quality"][rorder],
                   repeat=float(scales.repeat), column_sigma=float(scales.column_sigma),
                   lattice_vectors=scales.lattice_vectors,
                   noise_model=scales.noise.in_frame(scale=-1.0 if scales.inverted else 1.0,
                                                     offset=(1.0 if scales.inverted else -1.0) * scales.offset))
    res = TiledResult(columns=cols, scales=scales, scale_region=region, tile=tile, halo=halo_px, timings=timings)
    if motif_kw is None:
        return res
    model = motif_kw["model"]
    a = cat["has_patch"]
    sums = np.sum([p["sums"] for p in parts], axis=0)
    counts = np.sum([p["counts"] for p in parts], axis=0).astype(np.int64)
    avgs = (sums / np.maximum(counts, 1)[:, None, None]).astype(np.float32)
    avgs[counts == 0] = model.class_averages[counts == 0]  # a motif absent here keeps its training image
    res.analysed, res.labels, res.novel = a, cat["labels"][a], cat["novel"][a]
    res.confidence, res.novelty, res.embedding = cat["confidence"][a], cat["novelty"][a], cat["embedding"][a]
    res.class_averages, res.counts, res.model, res.fit_region = avgs, counts, model, fit
    return res
