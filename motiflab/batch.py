"""Batch analysis of many images with Dask.

One task per image; Dask schedules them over local processes (or any Dask
cluster the user has connected a ``distributed.Client`` to — the tasks are
plain functions of file paths, so they run on workers unchanged).
"""
from __future__ import annotations

from pathlib import Path

from .errors import MotifLabError

__all__ = ["analyse_file", "run_batch"]


def analyse_file(image, out, overwrite=False, frame=None, model=None, **params) -> dict:
    """Analyse one file and write its RESULT.npz; errors are returned, not raised.

    With ``model`` (a :class:`motiflab.model.MotifModel` or the path of a saved
    one), the file is classified into the model's motifs instead of fitting its own.

    Returns
    -------
    dict
        ``image``, ``out``, ``n_columns``, ``n_motifs``, ``error`` (None on success).
    """
    from .analysis import Analysis

    try:
        if model is not None:
            from .model import MotifModel, load_model

            mdl = model if isinstance(model, MotifModel) else load_model(model)
            an = mdl.classify(image, frame=frame)
        else:
            an = Analysis(image, frame=frame, **params).run()
        an.save(out, overwrite=overwrite)
        return dict(image=str(image), out=str(out), n_columns=len(an.positions),
                    n_motifs=an.motifs.n_motifs, error=None)
    except Exception as exc:  # one bad file must not stop the batch
        return dict(image=str(image), out=str(out), n_columns=0, n_motifs=0,
                    error=f"{type(exc).__name__}: {exc}")


def run_batch(images, out_dir, overwrite=False, workers=None, frame=None, progress=True,
              scheduler="processes", model=None, **params) -> list[dict]:
    """Analyse ``images`` in parallel, writing ``out_dir/<stem>.npz`` for each.

    Parameters
    ----------
    images : list of str or Path
    out_dir : str or Path
        Created if missing. Existing results are kept unless ``overwrite``.
    workers : int, optional
        Number of worker processes (default: Dask's, i.e. the core count).
    scheduler : str or distributed.Client
        Dask scheduler: ``"processes"`` (default), ``"threads"``, ``"synchronous"``,
        ``"distributed"`` to use an already-created ``distributed.Client``, a
        ``distributed.Client`` itself, or a scheduler address (``"tcp://host:8786"``).
    model : MotifModel or str, optional
        Classify every file into this model's motifs (one motif numbering for
        the whole batch) instead of fitting motifs per file.
    **params
        Analysis parameters (see :data:`motiflab.analysis.DEFAULTS`).

    Returns
    -------
    list of dict
        One record per image (see :func:`analyse_file`).
    """
    import dask

    images = [Path(p) for p in images]
    if not images:
        raise MotifLabError("no images given to the batch.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = [out_dir / f"{p.stem}.npz" for p in images]
    seen = {}
    for img, out in zip(images, outs):
        if out in seen:
            raise MotifLabError(f"{seen[out]} and {img} would both write {out}; rename one of them.")
        seen[out] = img
        if out.exists() and not overwrite:
            raise MotifLabError(f"{out} already exists; pass --overwrite or choose another --out-dir.")
    if isinstance(model, (str, Path)):
        from .model import load_model

        model = load_model(model)  # read once, here: a bad model file fails before any work
    mdl = None if model is None else dask.delayed(model, pure=True)
    tasks = [dask.delayed(analyse_file)(str(i), str(o), overwrite, frame, mdl, **params) for i, o in zip(images, outs)]
    if scheduler not in ("processes", "threads", "synchronous", "sync", "distributed"):
        from .series import dask_client

        client, own = dask_client(scheduler)  # an address or a Client
        try:
            futures = client.compute(tasks)
            if progress:
                from distributed import progress as dprogress

                dprogress(futures)
            return list(client.gather(futures))
        finally:
            if own:
                client.close()
    cfg = {} if scheduler == "distributed" else {"scheduler": scheduler}
    if workers is not None and scheduler != "distributed":
        cfg["num_workers"] = int(workers)
    with dask.config.set(**cfg):
        if progress and scheduler != "distributed":
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                results = dask.compute(*tasks)
        else:
            results = dask.compute(*tasks)
    return list(results)
