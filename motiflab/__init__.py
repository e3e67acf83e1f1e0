"""motiflab: learn structural motifs and their hierarchies in atomic-resolution micrographs.

An implementation of Dan et al., "Learning motifs and their hierarchies in atomic
resolution microscopy", Sci. Adv. 8, eabk1005 (2022).

Quick start
-----------
>>> import motiflab
>>> s = motiflab.load("MoSe2.dm4")            # any format HyperSpy reads
>>> an = motiflab.Analysis(s)                 # parameters + cached stages
>>> an.motifs.labels                          # columns → Zernike → FR layout → motifs

The heavy libraries (HyperSpy, scikit-learn, numba kernels) are imported on
first use, so ``import motiflab`` itself is quick.
"""
from __future__ import annotations

import importlib
import os

__version__ = "0.1.0"

# numba's on-disk cache: compiled kernels are reused across runs. When the
# package folder is read-only (system installs, Binder images), fall back to a
# per-user cache folder instead of recompiling every time.
if "NUMBA_CACHE_DIR" not in os.environ and not os.access(os.path.dirname(__file__), os.W_OK):
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(os.path.expanduser("~"), ".cache", "motiflab-numba")

# numba's OpenMP kernels (ours used them until they moved to motiflab._threads;
# pynndescent's still do) alternate with OpenBLAS products.
# By default idle OpenMP threads spin
# for a long while after each kernel (GNU: 300k spins; LLVM/Intel: 200 ms) and
# take the cores from the BLAS threads: on 2 cores the 34k-point kNN search
# took 5.2 s instead of 1.1 s, a 34k x 66 PCA 0.95 s instead of 0.01 s. A short
# spin keeps both: BLAS gets the cores back at once, and back-to-back kernels
# (the FR layout's iterations) still find their threads awake (2-15 us per
# launch; fully passive waiting costs 110-160 us per launch on these VMs).
# Must be set before the OpenMP runtime starts; the user's own settings win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    os.environ.setdefault("KMP_BLOCKTIME", "1")

_LAZY = {
    # function / class -> module
    "load": "io",
    "to_markers": "io",
    "Analysis": "analysis",
    "analyze": "analysis",
    "find_columns": "columns",
    "smooth": "smoothing",
    "fft_lowpass": "smoothing",
    "svd_denoise": "smoothing",
    "estimate_noise": "noise",
    "refine_positions": "columns",
    "detect_inverted": "columns",
    "estimate_patch_size": "patches",
    "radial_distribution": "patches",
    "extract_patches": "patches",
    "zernike_basis": "zernike",
    "zernike_moments": "zernike",
    "reconstruct_patches": "zernike",
    "symmetry_energy": "zernike",
    "ZernikeFeaturizer": "zernike",
    "FRLayout": "layout",
    "ForceStage": "layout",
    "knn_graph": "neighbors",
    "fuzzy_graph": "neighbors",
    "cluster_layout": "motifs",
    "class_averages": "motifs",
    "reconstruct_image": "motifs",
    "find_lattice": "lattice",
    "build_hierarchy": "hierarchy",
    "MotifLabError": "errors",
    "open_analysis": "analysis_file",
    "open_result": "results",
    "MotifModel": "model",
    "load_model": "model",
}
_SUBMODULES = {"analysis", "analysis_file", "assembly", "assembly_report", "batch", "cli", "colors", "columns",
               "curation", "datasets", "errors", "files", "hierarchy", "io", "lattice", "layout", "memory", "metrics", "model", "motifs",
               # live: also callable, motiflab.live(folder, model) opens the JupyterLab live view
               "live", "neighbors", "noise", "parameters", "patches", "results", "sites", "smoothing", "stages", "superlattice", "tiles",
               "variation",
               "widgets", "zernike"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(mod, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        mod = importlib.import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    if name == "explore":
        from .widgets import explore

        return explore
    raise AttributeError(f"module 'motiflab' has no attribute {name!r}")


def __dir__():
    return __all__ + ["explore", "__version__"]
