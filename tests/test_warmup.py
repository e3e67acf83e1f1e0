"""``motiflab warmup``: every kernel of the default pipeline compiled (and cached) ahead of use."""
import fast_hdbscan.boruvka

import motiflab._layout_kernels
import motiflab.columns
import motiflab.layout
import motiflab.neighbors
import motiflab.zernike
from motiflab.cli import main


def test_warmup_compiles_the_kernels_of_small_and_large_inputs(capsys):
    assert main(["warmup", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("numba kernels compiled and cached in ")
    assert "pipeline" in out and "large inputs" in out
    # kernels called from Python (callees are compiled into them); a cache hit also
    # registers the signature, so this holds whether or not they were cached before
    from motiflab import _columns_kernels, _patches_kernels, _separation_kernels, _sites_kernels

    for kernel in (_columns_kernels.com_refine, _columns_kernels.gauss2d_fit, _columns_kernels.disk_max,
                   _columns_kernels.minus_laplacian,
                   _sites_kernels.lattice_mean, _sites_kernels.side_sums, _separation_kernels.em_free,
                   _separation_kernels.em_tail, _patches_kernels.gather_bilinear, _patches_kernels.rotate_average,
                   motiflab.layout._fr_step, motiflab._layout_kernels.fr_step_paper,
                   motiflab.neighbors._fuzzy_weights,
                   motiflab.zernike._d4_block, fast_hdbscan.boruvka.parallel_boruvka):
        assert kernel.signatures, kernel.py_func.__qualname__
