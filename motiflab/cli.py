"""The ``motiflab`` command line.

Stable contracts (outside tools rely on them; change only compatibly):

``motiflab run [IMAGE] --out RESULT.npz [--patch-size N|auto] [--n-max 10] [--rotinv/--no-rotinv]
[--seed 0] [--hierarchy HIER.json] [--overwrite]``
    RESULT.npz holds ``positions`` (N, 2) float (row, col) px, ``labels`` (N,) int (−1 =
    unassigned), ``features`` (N, J) float32, ``embedding`` (N, 2) float32,
    ``class_averages`` (K, P, P), ``patch_size`` int — plus extras (``counts``,
    ``pixel_size``, ``units``, ``n_dropped``). IMAGE defaults to the built-in sample.

``motiflab run IMAGE --out RESULT.npz --save-model M.hspy`` / ``motiflab run IMAGE --out RESULT.npz --model M.hspy``
    Also write the fitted motif model / classify IMAGE into a saved model's motifs
    (labels −2 = unlike every motif of the model); RESULT.npz as above.

``motiflab demo [--out motiflab-demo.html]``
    Runs the whole pipeline on the built-in sample and writes a self-contained
    HTML report that opens offline.

``motiflab batch FILES... --out-dir DIR``
    The same job over many files with Dask (one task per file).

``motiflab watch DIR --model M.hspy [--out-dir R] [--pattern '*.dm4'] [--poll 0.5] [--max-frames N] [--timeout S] [--alert 'motif 2 > 5%']``
    Live microscope mode (:mod:`motiflab.live`): classifies every new, completely
    written frame in DIR with the model, writes ``R/<frame stem>.npz`` (the RESULT.npz
    contract) and one row of ``R/populations.csv``, and prints one line per frame.
    Bad files are reported on stderr and skipped; Ctrl-C stops; a restart resumes.

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
from .parameters import cli_type

SAMPLE = "sample"


def _add_analysis_args(p):
    """The analysis options, one per parameter of :mod:`motiflab.parameters` (grouped by stage)."""
    from .parameters import add_cli_options

    p.add_argument("--frame", type=int, default=None, help="frame of an image stack to analyse")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_cli_options(p)


def _params(args) -> dict:
    from .parameters import from_cli

    return from_cli(args)


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}")
    return n


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
    from .analysis import Analysis, check_save_suffix

    save_model, use_model = getattr(args, "save_model", None), getattr(args, "model", None)
    if save_model and use_model:
        raise MotifLabError("--model applies a saved model and --save-model fits a new one; give one of them.")
    _check_outputs([args.out, args.hierarchy, args.report, args.table, save_model], args.overwrite,
                   inputs=[args.image, use_model])  # fail before the work
    check_save_suffix(args.out)
    t0 = time.perf_counter()
    if use_model:
        from .model import load_model

        # the model brings its own detection, patch and feature settings
        an = load_model(use_model).classify(_source(args.image), frame=args.frame, progress=not args.quiet)
    else:
        an = Analysis(_source(args.image), frame=args.frame, progress=not args.quiet, **_params(args))
        an.run()
    an.save(args.out, overwrite=args.overwrite)
    if save_model:
        an.model().save(save_model, overwrite=args.overwrite)
    if args.hierarchy:
        write_hierarchy(an, args.hierarchy, args.overwrite)
    if args.report:
        from .widgets.report import write_report

        write_report(an, args.report, overwrite=args.overwrite)
    if args.table:
        from .files import write_atomic

        table = an.table()
        write_atomic(args.table, lambda f: table.to_csv(f), args.overwrite, inputs=an.input_files(), binary=False)
    if not args.quiet:
        print(an.summary())
        written = [p for p in (args.out, args.hierarchy, args.report, args.table, save_model) if p]
        print(f"wrote {', '.join(written)} in {time.perf_counter() - t0:.1f} s")
    return 0


def write_hierarchy(an, path, overwrite=False):
    """Write the motif-cell hierarchy of an analysis (:attr:`motiflab.Analysis.hierarchy`) as JSON."""
    import json

    from .files import write_atomic

    h = an.hierarchy
    write_atomic(path, lambda f: json.dump(h.to_json(), f, indent=1), overwrite, inputs=an.input_files(),
                 binary=False)
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

    extra = {}
    if getattr(args, "scheduler", None):
        extra["scheduler"] = args.scheduler
    if getattr(args, "model", None):
        extra["model"] = args.model
    results = run_batch(args.images, args.out_dir, overwrite=args.overwrite, workers=args.workers,
                        frame=args.frame, progress=not args.quiet, **extra, **_params(args))
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
    r.add_argument("--table", default=None, help="also write one row per column as CSV (x, y in the image's units, "
                                                "motif, quality, intensity, nearest-neighbour distance, motif-cell)")
    r.add_argument("--save-model", default=None, metavar="M.hspy",
                   help="also write the fitted motif model (motiflab.load_model reads it)")
    r.add_argument("--model", default=None, metavar="M.hspy",
                   help="classify IMAGE with a saved motif model instead of fitting new motifs "
                        "(the model's own analysis settings are used)")
    _add_analysis_args(r)
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="run the built-in sample and write an offline HTML report")
    d.add_argument("--out", default="motiflab-demo.html", help="HTML file to write (default motiflab-demo.html)")
    d.add_argument("--seed", type=cli_type("seed"), default=0, help="random seed (default 0)")
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("batch", help="analyse many images (Dask), one RESULT.npz each")
    b.add_argument("images", nargs="+", help="image files")
    b.add_argument("--out-dir", required=True, help="folder for the results (created if missing)")
    b.add_argument("--workers", type=_positive_int, default=None, help="parallel worker processes (default: cores)")
    b.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler: threads, processes (default), synchronous, or a distributed scheduler "
                        "address such as tcp://host:8786")
    b.add_argument("--model", default=None, metavar="M.hspy",
                   help="classify every file into a saved motif model's motifs (one numbering for the batch)")
    _add_analysis_args(b)
    b.set_defaults(func=cmd_batch)

    lv = sub.add_parser("watch", help="live mode: classify every new frame written into a folder with a motif model")
    lv.add_argument("folder", help="the folder the microscope writes frames into")
    lv.add_argument("--model", required=True, metavar="M.hspy", help="the motif model (motiflab run --save-model)")
    lv.add_argument("--out-dir", default=None, help="folder for the results (default DIR/motiflab; created if missing)")
    lv.add_argument("--pattern", action="append", default=None,
                    help="file-name pattern to watch, e.g. '*.dm4' (repeatable; default every supported format)")
    lv.add_argument("--poll", type=float, default=0.5, help="seconds between scans of the folder (default 0.5)")
    lv.add_argument("--shape", default=None, metavar="ROWSxCOLS", help="expected frame shape; others are skipped")
    lv.add_argument("--no-events", action="store_true", help="poll only (network shares deliver no file events)")
    lv.add_argument("--max-frames", type=_positive_int, default=None, help="stop after this many new frames")
    lv.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    lv.add_argument("--alert", action="append", default=None, metavar="'motif K > P%'",
                    help="print an ALERT line when a motif ('motif 2'), 'new' or 'unassigned' columns make up more "
                         "than P %% of a frame's columns, e.g. --alert 'motif 2 > 5%%' (repeatable)")
    lv.add_argument("--no-new-alert", action="store_true",
                    help="no alert when columns unlike every motif of the model appear (on by default)")
    lv.add_argument("-q", "--quiet", action="store_true", help="no per-frame lines (skipped files and alerts are still reported)")
    lv.set_defaults(func=cmd_watch)

    w = sub.add_parser("warmup", help="compile and cache every numba kernel now (once per environment)")
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=cmd_warmup)
    return ap


def cmd_watch(args) -> int:
    from .live import watch

    shape = None
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.lower().split("x"))
        except ValueError:
            shape = ()
        if len(shape) != 2 or min(shape) < 1:
            raise MotifLabError(f"--shape is ROWSxCOLS, e.g. 1024x1024; got {args.shape!r}.")
    w = watch(args.folder, args.model, out_dir=args.out_dir, pattern=args.pattern, poll=args.poll,
              max_frames=args.max_frames, timeout=args.timeout, shape=shape,
              events=False if args.no_events else None, quiet=args.quiet, alerts=args.alert,
              new_columns_alert=not args.no_new_alert)
    if not args.quiet:
        print(f"stopped: {len(w.rows)} frames in {w.populations_path}, {len(w.errors)} files skipped")
    return 0


def cmd_warmup(args) -> int:
    from .warmup import warm_up

    seconds = warm_up(progress=not args.quiet)
    total = sum(seconds.values())
    print(f"numba kernels compiled and cached in {total:.0f} s ("
          + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in seconds.items()) + ")")
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed): an exit code, as below
        return exc.code if isinstance(exc.code, int) else 2
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
