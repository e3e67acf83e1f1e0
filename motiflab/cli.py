"""The ``motiflab`` command line.

Stable contracts (outside tools rely on them; change only compatibly):

``motiflab run [IMAGE] --out RESULT.npz [--patch-size N|auto] [--n-max 10] [--rotinv/--no-rotinv]
[--seed 0] [--hierarchy HIER.json] [--overwrite]``
    RESULT.npz holds ``positions`` (N, 2) float (row, col) px, ``labels`` (N,) int (−1 =
    unassigned), ``features`` (N, J) float32, ``embedding`` (N, 2) float32,
    ``class_averages`` (K, P, P), ``patch_size`` int — plus extras (``counts``,
    ``pixel_size``, ``units``, ``n_dropped``). IMAGE defaults to the built-in sample.

``motiflab demo [--out motiflab-demo.html]``
    Runs the whole pipeline on the built-in sample and writes a self-contained
    HTML report that opens offline.

``motiflab batch FILES... --out-dir DIR``
    The same job over many files with Dask (one task per file).

``motiflab warmup``
    Compiles and caches every numba kernel (once per environment; see
    :mod:`motiflab.warmup`), so the first analysis starts compiled.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import MotifLabError

SAMPLE = "sample"


def _add_analysis_args(p):
    p.add_argument("--patch-size", default="auto", help="patch side in px, or 'auto' (from the RDF; default)")
    p.add_argument("--n-max", type=int, default=10, help="maximum Zernike radial order (default 10 → 66 moments)")
    rot = p.add_mutually_exclusive_group()
    rot.add_argument("--rotinv", dest="rotinv", action="store_true", help="rotation-invariant Zernike features")
    rot.add_argument("--no-rotinv", dest="rotinv", action="store_false", help="signed moments (default)")
    p.set_defaults(rotinv=False)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--smoothing", default="matched", choices=["matched", "svd", "fft", "gaussian", "none"],
                   help="smoothing before column finding (default matched: a Gaussian as wide as a column)")
    p.add_argument("--threshold", type=float, default=5.0,
                   help="significance a column's own peak needs, in noise units (default 5)")
    p.add_argument("--lattice", default="auto", choices=["auto", "off"],
                   help="auto: on a crystal, also accept faint columns on the sites its lattice repeats "
                        "(default); off: every column on its own evidence")
    p.add_argument("--min-contrast", type=float, default=0.1,
                   help="columns fainter than this fraction of the brightest are background (default 0.1)")
    p.add_argument("--min-cluster-size", type=int, default=None,
                   help="smallest motif class (default 0.1%% of the columns, at least 5)")
    p.add_argument("--n-iter", type=int, default=None, help="FR layout iterations")
    p.add_argument("--frame", type=int, default=None, help="frame of an image stack to analyse")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _params(args) -> dict:
    ps = args.patch_size
    if ps != "auto":
        try:
            ps = int(ps)
        except ValueError:
            raise MotifLabError(f"--patch-size must be 'auto' or an integer, got {args.patch_size!r}.")
    params = dict(patch_size=ps, n_max=args.n_max, rotinv=args.rotinv, seed=args.seed,
                  smoothing=args.smoothing, threshold=args.threshold, lattice=args.lattice,
                  min_contrast=args.min_contrast, min_cluster_size=args.min_cluster_size)
    if args.n_iter is not None:
        params["n_iter"] = args.n_iter
    return params


def _source(image):
    if image in (None, SAMPLE):
        from .datasets import load_sample

        return load_sample().to_signal()
    return image


def _check_outputs(paths, overwrite, inputs=()):
    """Refuse before any work: an existing file without --overwrite, an input as output, one path twice."""
    import os

    from .files import check_writable

    given = [p for p in paths if p is not None]
    seen = {}
    for p in given:
        key = os.path.realpath(p)
        if key in seen:
            raise MotifLabError(f"{seen[key]!r} and {p!r} name the same file; give each output its own path.")
        seen[key] = p
        check_writable(p, overwrite, inputs=[i for i in inputs if i not in (None, SAMPLE)])


def cmd_run(args) -> int:
    from .analysis import Analysis

    _check_outputs([args.out, args.hierarchy, args.report], args.overwrite, inputs=[args.image])  # fail before the work
    t0 = time.perf_counter()
    an = Analysis(_source(args.image), frame=args.frame, progress=not args.quiet, **_params(args))
    an.run()
    an.save(args.out, overwrite=args.overwrite)
    if args.hierarchy:
        write_hierarchy(an, args.hierarchy, args.overwrite)
    if args.report:
        from .widgets.report import write_report

        write_report(an, args.report, overwrite=args.overwrite)
    if not args.quiet:
        print(an.summary())
        print(f"wrote {args.out}" + (f", {args.hierarchy}" if args.hierarchy else "")
              + (f", {args.report}" if args.report else "") + f" in {time.perf_counter() - t0:.1f} s")
    return 0


def write_hierarchy(an, path, overwrite=False):
    """Build the motif-cell hierarchy of an analysis and write its JSON contract."""
    import json

    from .hierarchy import build_hierarchy
    from .files import write_atomic

    h = build_hierarchy(an.positions, an.motifs.labels, ignore_labels=(-1,))
    write_atomic(path, lambda f: f.write(json.dumps(h.to_json(), indent=1)), overwrite, binary=False)
    return h


def cmd_demo(args) -> int:
    from .analysis import Analysis

    _check_outputs([args.out], args.overwrite)
    try:
        from .widgets.report import write_report
    except ImportError as exc:  # bokeh missing
        raise MotifLabError(f"the demo report needs Bokeh ({exc}); pip install 'motiflab[interactive]'.")
    t0 = time.perf_counter()
    an = Analysis(_source(None), progress=not args.quiet, seed=args.seed).run()
    write_report(an, args.out, overwrite=args.overwrite)
    if not args.quiet:
        print(an.summary())
        print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s — open it in a browser (works offline)")
    return 0


def cmd_batch(args) -> int:
    from .batch import run_batch

    results = run_batch(args.images, args.out_dir, overwrite=args.overwrite, workers=args.workers,
                        frame=args.frame, progress=not args.quiet, **_params(args))
    failed = [r for r in results if r["error"]]
    for r in results:
        status = "ok" if not r["error"] else f"FAILED: {r['error']}"
        print(f"{r['image']}: {status}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="motiflab", description="Learn structural motifs in atomic-resolution images.")
    ap.add_argument("--version", action="version", version=f"motiflab {__import__('motiflab').__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="analyse one image and write RESULT.npz")
    r.add_argument("image", nargs="?", default=SAMPLE,
                   help="image file (dm3/dm4/emd/tif/hspy/npy, anything HyperSpy reads); default: built-in sample")
    r.add_argument("--out", required=True, help="RESULT.npz to write")
    r.add_argument("--hierarchy", default=None, help="also write the motif-cell hierarchy as JSON")
    r.add_argument("--report", default=None, help="also write a self-contained HTML report")
    _add_analysis_args(r)
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="run the built-in sample and write an offline HTML report")
    d.add_argument("--out", default="motiflab-demo.html", help="HTML file to write (default motiflab-demo.html)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("batch", help="analyse many images (Dask), one RESULT.npz each")
    b.add_argument("images", nargs="+", help="image files")
    b.add_argument("--out-dir", required=True, help="folder for the results (created if missing)")
    b.add_argument("--workers", type=int, default=None, help="parallel worker processes (default: cores)")
    _add_analysis_args(b)
    b.set_defaults(func=cmd_batch)

    w = sub.add_parser("warmup", help="compile and cache every numba kernel now (once per environment)")
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=cmd_warmup)
    return ap


def cmd_warmup(args) -> int:
    from .warmup import warm_up

    seconds = warm_up(progress=not args.quiet)
    total = sum(seconds.values())
    print(f"numba kernels compiled and cached in {total:.0f} s ("
          + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in seconds.items()) + ")")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MotifLabError as exc:
        print(f"motiflab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("motiflab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
