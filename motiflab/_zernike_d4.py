"""The symmetry-adapted (D4) transform behind :func:`motiflab.zernike.zernike_moments`.

:func:`build_plan` derives, from the orthonormal basis, which component blocks
each function needs and their coefficients (a :class:`D4Plan`);
:func:`project` runs it over a stack of patches on a small thread pool, one
GIL-free numba call (:func:`block_moments`) per block of patches.
:mod:`motiflab.zernike` decides when to use it (large stacks, patches of at
least 16 x 16) and caches the plan per ``(P, n_max)``.  This module is private,
so its names carry no underscore.

The dense product spends ``P*P * J`` multiply-adds per patch. The pixel grid
and the disk are invariant under the 8 symmetries D4 of the square (mirrors
``x -> -x``, ``y -> -y`` and the swap ``x <-> y``), and so is the Löwdin basis.
Each basis function therefore has a definite parity in ``x`` and in ``y`` (cos
even m: even/even, cos odd m: odd/even, sin odd m: even/odd, sin even m:
odd/odd), and each even-m function is symmetric or antisymmetric under the
swap. A numba kernel folds every patch with butterflies (sums and differences
of the mirror images of each pixel, in float32; float64 and integer stacks are
read directly, no converted copy): per quadrant point the four parity
components, and per D4 orbit (a pixel with ``0 <= y <= x`` and its 7 images)
the sum and difference of the even/even and odd/odd components of the point and
its swap. A function then needs only one of those blocks (even m) or one parity
block over the quadrant (odd m): ~96 instead of 8 * 66 multiply-adds per orbit
for ``n_max=10``, ~7x fewer than the dense product for ``P >= 32``. Each thread
takes blocks of patches and, in one numba call without the GIL, folds a
sub-block, runs the six small sgemms (single-threaded BLAS) and puts the
columns back in OSA order. Which blocks each function uses is read off its
coefficients, and the whole basis is rebuilt from the kept blocks and checked
against the dense one when the transform is set up. Small stacks (where BLAS
reads a cached stack faster than the kernel can fold it) and patches below
16 x 16 keep the dense product. Both agree to float32 rounding.
"""
from __future__ import annotations

import itertools
import threading
import warnings
from typing import NamedTuple

import numba
import numpy as np

from ._blas import single_threaded_blas
from ._threads import executor

# Butterflies over the images (x, y), (-x, y), (x, -y), (-x, -y) of one quadrant
# point; rows are the parity classes ee, oe, eo, oo (even/odd in x, then in y).
T4 = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=np.float64)
# Over the 8 images of a D4 orbit: those of (x, y), then those of the swapped (y, x).
# Rows: ee+, ee-, oo+, oo- (sum / difference of the two quadrant butterflies, for
# the functions that are symmetric / antisymmetric under x <-> y), then the four
# odd butterflies a_oe, b_oe, a_eo, b_eo (only used to make the map invertible).
T8 = np.block([
    [T4[[0]], T4[[0]]], [T4[[0]], -T4[[0]]], [T4[[3]], T4[[3]]], [T4[[3]], -T4[[3]]],
    [T4[[1]], 0 * T4[[1]]], [0 * T4[[1]], T4[[1]]], [T4[[2]], 0 * T4[[2]]], [0 * T4[[2]], T4[[2]]],
])


class D4Plan(NamedTuple):
    """Component blocks and grouped coefficients of the symmetry-adapted transform.

    Quadrant point ``(i, j)`` is the pixel at ``x = X(j), y = Y(i)`` with
    ``X(k) = Y(k) = k + (1 - P % 2) / 2``, ``0 <= i, j < h = ceil(P / 2)``; its
    images under the mirrors are ``(+-x, +-y)``. A patch has six component
    blocks: ee+, ee-, oo+, oo- over the ``n_orb`` D4 orbits (orbit ``k`` is the
    quadrant point ``orb_a[k] = i * h + j`` with ``j >= i`` together with its
    mirror ``orb_b[k] = j * h + i``), then oe and eo over the ``n_quad``
    quadrant points inside the disk (point ``(i, j)``, ``j < jq[i]``, at
    ``qoff[i] + j``). For a block of patches each component block is a
    C-contiguous (patches, size) matrix, ready for BLAS.
    """

    h: int
    jq: np.ndarray
    qoff: np.ndarray
    orb_a: np.ndarray  # flat (i * h + j) quadrant index of each orbit ...
    orb_b: np.ndarray  # ... and of its mirror (j * h + i)
    q_out: np.ndarray  # flat quadrant indices outside the disk
    sizes: np.ndarray  # components per patch of each block: n_orb x 4, n_quad x 2
    groups: tuple  # (g0, g1, ((block, W), ...)): G[:, g0:g1] = sum comps[block] @ W
    order: np.ndarray  # OSA index of each grouped output column
    terms: np.ndarray  # the groups for numba: rows (g0, g1, block, offset of W in Wflat, first)
    Wflat: np.ndarray  # float32, every W of every group, C order, concatenated
    flops: int  # multiply-adds x 2 per patch


def n_images(img: np.ndarray) -> np.ndarray:
    """Number of distinct pixels in each row of ``img``."""
    srt = np.sort(img, axis=1)
    return (np.diff(srt, axis=1) != 0).sum(axis=1) + 1


def butterfly_coefs(T: np.ndarray, img: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Coefficients C with ``sum_pixels(f * B[:, j]) = sum_t (T f_img)_t C[:, t, j]``.

    ``img`` lists the images of each orbit with repeats (axes, diagonals, centre);
    a pixel repeated ``|stab|`` times is divided by ``|stab|`` so it counts once.
    """
    stab = img.shape[1] / n_images(img)
    return np.einsum("tg,ngj->ntj", np.linalg.inv(T).T, B[img]) / stab[:, None, None]


def no_plan(P: int, n_max: int, why: str):
    # stacklevel 4: past this function, build_plan and zernike._d4_plan, to their caller
    warnings.warn(
        f"Zernike moments for patch_size={P}, n_max={n_max} fall back to the slower dense "
        f"product: {why}.", RuntimeWarning, stacklevel=4,
    )
    return None




def build_plan(B: np.ndarray, inside: np.ndarray, P: int, n_max: int) -> D4Plan | None:
    """Build (and check) the symmetry-adapted transform of the basis ``B``.

    Parameters
    ----------
    B : ndarray of float64, shape (P*P, J)
        The orthonormal basis (:func:`motiflab.zernike.zernike_basis` in float64).
    inside : ndarray of bool, shape (P, P)
        The pixels inside the inscribed disk.
    P, n_max : int
        Patch side and radial order (for the warning).

    Returns
    -------
    D4Plan or None
        None (with a RuntimeWarning) where the dense product must be used.

    Notes
    -----
    Every coefficient is derived numerically from the basis, and which
    component blocks each function uses is read off the coefficients, so
    nothing here assumes which ``(n, m)`` is symmetric how. The dropped blocks
    are then checked to be zero by rebuilding the whole basis from the kept
    ones; ``None`` (dense fallback, with a warning) if that ever fails.
    """
    if not all(np.array_equal(inside, v) for v in (inside[::-1], inside[:, ::-1], inside.T)):
        return no_plan(P, n_max, "the disk mask is not D4-symmetric")
    o, ev = P // 2, 1 - P % 2
    h = o + 1 - ev
    k = np.arange(h)
    r_up, r_dn, c_rt, c_lt = o - ev - k, o + k, o + k, o - ev - k  # pixel rows / cols of +-Y(k), +-X(k)
    qin = inside[r_up[:, None], c_rt[None, :]]
    jq = qin.sum(axis=1).astype(np.int64)
    if not all(qin[i, : jq[i]].all() for i in range(h)):
        return no_plan(P, n_max, "the disk does not cover a prefix of each quadrant row")
    jend = np.maximum(jq, k)
    qi = np.repeat(k, jq)
    qj = np.concatenate([np.arange(jq[i]) for i in range(h)])
    oi = np.repeat(k, jend - k)
    oj = np.concatenate([np.arange(i, jend[i]) for i in range(h)])
    n_quad, n_orb = qi.size, oi.size

    def img4(i, j):
        return np.stack([r_up[i] * P + c_rt[j], r_up[i] * P + c_lt[j],
                         r_dn[i] * P + c_rt[j], r_dn[i] * P + c_lt[j]], axis=1)

    img_q = img4(qi, qj)
    img_o = np.concatenate([img4(oi, oj), img4(oj, oi)], axis=1)
    Cq = butterfly_coefs(T4, img_q, B)  # (n_quad, 4, J)
    Co = butterfly_coefs(T8, img_o, B)  # (n_orb, 8, J)
    # block b of function j: its coefficients on ee+, ee-, oo+, oo-, oe, eo
    sizes = np.array([n_orb] * 4 + [n_quad] * 2, dtype=np.int64)
    Wb = [Co[:, 0], Co[:, 1], Co[:, 2], Co[:, 3], Cq[:, 1], Cq[:, 2]]
    nrm = np.stack([np.linalg.norm(w, axis=0) for w in Wb])
    used = nrm > 1e-9 * nrm.max(axis=0)
    groups, order, terms, Ws, flops, n_w = [], [], [], [], 0, 0
    for key in sorted(set(map(tuple, used.T.tolist())), key=lambda u: np.flatnonzero(u).tolist()):
        cols = np.flatnonzero((used.T == key).all(axis=1))
        g0, g1 = len(order), len(order) + cols.size
        parts = []
        for blk in np.flatnonzero(key):
            W = np.ascontiguousarray(Wb[blk][:, cols], dtype=np.float32)
            W.flags.writeable = False
            parts.append((int(blk), W))
            terms.append((g0, g1, blk, n_w, len(parts) == 1))
            Ws.append(W.ravel())
            n_w += W.size
            flops += 2 * W.size
        groups.append((g0, g1, tuple(parts)))
        order += cols.tolist()
    # rebuild every pixel of every basis function from the kept coefficients only
    Brec = np.zeros_like(B)
    keep = [np.where(used[blk], w, 0.0) for blk, w in enumerate(Wb)]
    np.add.at(Brec, img_o, np.einsum("tg,ntj->ngj", T8[:4], np.stack(keep[:4], axis=1)))
    np.add.at(Brec, img_q, np.einsum("tg,ntj->ngj", T4[1:3], np.stack(keep[4:], axis=1)))
    err = np.abs(Brec - B).max() / np.abs(B).max()
    if not err < 1e-9:
        return no_plan(P, n_max, f"the transform does not reproduce the basis (error {err:.1e})")
    if not used[0].any():  # pragma: no cover - (0, 0) is always in ee+, where the NaN flag goes
        return no_plan(P, n_max, "no function uses the ee+ block")
    return D4Plan(h, jq, np.cumsum(np.r_[0, jq[:-1]]), oi * h + oj, oj * h + oi, np.flatnonzero(~qin.ravel()),
                   sizes, tuple(groups), np.asarray(order, dtype=np.int64),
                   np.asarray(terms, dtype=np.int64).reshape(-1, 5), np.concatenate(Ws), flops)



@numba.njit(nogil=True, cache=True)
def patch_components(X, start, stop, P, jq, qoff, orb_a, orb_b, q_out, n_quad, cb, boff):
    """Components (see :class:`D4Plan`) of patches ``X[start:stop]``.

    ``X`` is (N, P*P) in any real dtype; everything after the load is float32.
    Component ``k`` of block ``b`` of the ``p``-th patch goes to
    ``cb[boff[b] + p * size_b + k]``. Written for LLVM's loop vectoriser:
    indices are cast to uint64 (no negative-index wraparound code) and the
    inner loops run over whole rows (P or h long) rather than over the disk's
    ragged rows, whose short trip counts would leave them scalar.
    """
    u = np.uint64
    n_orb = orb_a.size
    o = P // 2
    ev = 1 - P % 2
    h = o + 1 - ev
    xl = np.empty(P * P, np.float32)
    s = np.empty(P, np.float32)
    d = np.empty(P, np.float32)
    qe = np.empty(h * h, np.float32)
    qo = np.empty(h * h, np.float32)
    for p in range(stop - start):
        x = X[start + p]
        for c in range(P * P):  # one sequential pass: prefetch-friendly, converts the dtype
            xl[u(c)] = np.float32(x[u(c)])
        b_oe = boff[4] + p * n_quad
        b_eo = boff[5] + p * n_quad
        for i in range(h):
            # fold the row pair +-Y(i): s even, d odd in y
            bu = (o - ev - i) * P
            bd = (o + i) * P
            for c in range(P):
                a = xl[u(bu + c)]
                b = xl[u(bd + c)]
                s[u(c)] = a + b
                d[u(c)] = a - b
            # fold the columns +-X(j): the parity classes of quadrant point (i, j).
            # Whole rows of h are written; the part outside the disk (j >= jq[i]) is
            # overwritten by row i + 1 (or by the next patch, or lands in the h
            # spare slots after the block).
            qi = i * h
            qb = qoff[i]
            for j in range(h):
                r = s[u(o + j)]
                l = s[u(o - ev - j)]
                qe[u(qi + j)] = r + l
                cb[u(b_oe + qb + j)] = r - l
            for j in range(h):
                r = d[u(o + j)]
                l = d[u(o - ev - j)]
                cb[u(b_eo + qb + j)] = r + l
                qo[u(qi + j)] = r - l
        # x <-> y: sum and difference of quadrant point (i, j) and its mirror (j, i).
        # One flat loop over precomputed indices: the ragged per-row loops cost
        # more in mispredicted loop exits than in arithmetic.
        b0 = boff[0] + p * n_orb
        b1 = boff[1] + p * n_orb
        b2 = boff[2] + p * n_orb
        b3 = boff[3] + p * n_orb
        for k in range(n_orb):
            ia = u(orb_a[k])
            ib = u(orb_b[k])
            a = qe[ia]
            b = qe[ib]
            c = qo[ia]
            e = qo[ib]
            cb[u(b0 + k)] = a + b
            cb[u(b1 + k)] = a - b
            cb[u(b2 + k)] = c + e
            cb[u(b3 + k)] = c - e
        # Pixels outside the disk are never used, but NaN/Inf there must still reach
        # the result as in the dense product (NaN * 0 = NaN). qe holds the sum of
        # the four images of every quadrant point, those outside the disk included;
        # the flag goes into ee+ (used by the (0, 0) moment, so by a group).
        # Four running sums: one chain of dependent adds cost ~8 % of the kernel.
        z0 = z1 = z2 = z3 = np.float32(0.0)
        n_out = q_out.size
        k = 0
        while k + 4 <= n_out:
            z0 += qe[u(q_out[k])] * np.float32(0.0)
            z1 += qe[u(q_out[k + 1])] * np.float32(0.0)
            z2 += qe[u(q_out[k + 2])] * np.float32(0.0)
            z3 += qe[u(q_out[k + 3])] * np.float32(0.0)
            k += 4
        while k < n_out:
            z0 += qe[u(q_out[k])] * np.float32(0.0)
            k += 1
        cb[u(b0)] += (z0 + z1) + (z2 + z3)


@numba.njit(nogil=True, cache=True)
def block_moments(X, start, stop, P, jq, qoff, orb_a, orb_b, q_out, sizes, terms, Wflat,
              nb2, cb, boff, G, base, stride, A, a0):
    """Moments of patches ``X[start:stop]`` into ``A[a0:a0 + stop - start]``.

    Sub-blocks of ``nb2`` patches: components (:func:`patch_components`), then the sgemms
    of the groups (``np.dot`` calls BLAS), then the columns back to OSA order,
    all without the GIL: one Python call per block instead of one per sgemm.
    """
    for s2 in range(start, stop, nb2):
        n = min(stop, s2 + nb2) - s2
        patch_components(X, s2, s2 + n, P, jq, qoff, orb_a, orb_b, q_out, sizes[4], cb, boff)
        for t in range(terms.shape[0]):
            g0 = terms[t, 0]
            ng = terms[t, 1] - g0
            blk = terms[t, 2]
            kb = sizes[blk]
            a = cb[boff[blk]: boff[blk] + n * kb].reshape(n, kb)
            w = Wflat[terms[t, 3]: terms[t, 3] + kb * ng].reshape(kb, ng)
            out = G[nb2 * g0: nb2 * g0 + n * ng].reshape(n, ng)
            if terms[t, 4]:
                np.dot(a, w, out)
            else:  # a function that needs several blocks (never for a D4-symmetric basis)
                out += np.dot(a, w)
        for p in range(n):
            for j in range(A.shape[1]):
                A[a0 + s2 - start + p, j] = G[base[j] + p * stride[j]]


# Input dtypes the kernel reads directly (one compiled specialisation each); any
# other dtype or layout is first converted block by block into a float32 buffer.
KERNEL_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.uint8, np.uint16, np.int16))
# Work memory per thread. A sub-block's components and sgemm outputs take
# SUB_BYTES (measured, 10k patches of 32^2 / 64^2: 0.25-1 MiB, i.e. L2-sized,
# is 5-15 % slower than 2 MiB: the sgemms want more rows); a block, the unit of
# work handed to a thread, is a whole number of sub-blocks and, when the input is
# not read directly, is converted into a float32 buffer, together at most
# BLOCK_BYTES.
SUB_BYTES = 2 * 2**20
BLOCK_BYTES = 6 * 2**20

tls = threading.local()


def work_buffers(n_sub: int, n_conv: int):
    """Per-thread float32 work memory: ``n_sub`` floats for a sub-block, ``n_conv`` for conversion.

    Kept between calls (at most BLOCK_BYTES per thread, like BLAS's own
    packing buffers): allocating and first-touching megabytes on every call
    costs more than the whole transform of a few thousand patches.
    """
    mem = getattr(tls, "mem", None)
    if mem is None or mem.size < n_sub + n_conv:
        mem = tls.mem = np.empty(n_sub + n_conv, dtype=np.float32)
    return mem[:n_sub], mem[n_sub: n_sub + n_conv]


def project(flat: np.ndarray, plan: D4Plan, P: int, J: int) -> np.ndarray:
    """Symmetry-adapted moments of ``flat`` (N, P*P) or (N, P, P), float32 (N, J)."""
    N = flat.shape[0]
    K = P * P
    direct = flat.ndim == 2 and flat.flags.c_contiguous and flat.dtype in KERNEL_DTYPES
    n_workers = numba.get_num_threads()
    # sub-block: per patch the six component blocks and the J sgemm outputs, plus
    # h spare slots after each quadrant block (see patch_components)
    per_patch = int(plan.sizes.sum()) + J
    nb2 = max(8, SUB_BYTES // (4 * per_patch))
    n_sub = nb2 * per_patch + 2 * plan.h
    # Blocks: whole sub-blocks, at most BLOCK_BYTES of work memory, and at least
    # 4 per worker where N allows (a worker that is descheduled just takes fewer).
    # They depend on N, P and the thread count only, not on the input layout, so a
    # view and its copy give bit-identical results.
    n_units = -(-N // nb2)
    per_block = max(1, (BLOCK_BYTES // 4 - n_sub) // (nb2 * K))
    n_blocks = min(n_units, max(-(-n_units // per_block), 4 * n_workers))
    nb = nb2 * -(-n_units // n_blocks)
    n_workers = min(n_workers, -(-N // nb))
    spare = np.array([0, 0, 0, 0, plan.h, plan.h], dtype=np.int64)
    boff = np.cumsum(np.r_[0, (nb2 * plan.sizes + spare)[:-1]])
    # Each group's sgemm writes its own C-contiguous (n, J_g) slab of G: moment j
    # of patch p of a sub-block sits at G[base[j] + p * stride[j]].
    stride = np.empty(J, dtype=np.int64)
    base = np.empty(J, dtype=np.int64)
    for g0, g1, _ in plan.groups:
        cols = plan.order[g0:g1]
        stride[cols] = g1 - g0
        base[cols] = nb2 * g0 + np.arange(g1 - g0)
    A = np.empty((N, J), dtype=np.float32)
    blocks = itertools.count()  # shared by the workers

    def work():
        sub, buf = work_buffers(n_sub, 0 if direct else nb * K)
        cb, G = sub[: n_sub - nb2 * J], sub[n_sub - nb2 * J:]
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are reported by the caller
            while (s := next(blocks) * nb) < N:
                e = min(s + nb, N)
                if direct:
                    src, start = flat, s
                else:
                    src, start = buf[: (e - s) * K].reshape(e - s, K), 0
                    np.copyto(src.reshape(flat[s:e].shape), flat[s:e], casting="unsafe")
                block_moments(src, start, start + e - s, P, plan.jq, plan.qoff, plan.orb_a, plan.orb_b,
                          plan.q_out, plan.sizes, plan.terms, plan.Wflat, nb2, cb, boff, G, base,
                          stride, A, s)

    with single_threaded_blas():
        futures = [executor().submit(work) for _ in range(n_workers - 1)]
        try:
            work()
        finally:
            for f in futures:
                if not f.cancel():  # a helper that has not started yet is not waited for
                    f.result()
    return A
