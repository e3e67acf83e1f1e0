"""Counter-based random numbers for numba kernels (splitmix64).

One home for the generator that the threaded kernels share: the FR layout's
negative sampling (:mod:`motiflab._layout_kernels`) and the synthetic
images' per-pixel Poisson noise (:mod:`motiflab.datasets._render`).  Each
caller hashes its own counters (seed, iteration, block or pixel index) into a
private stream, so the numbers do not depend on how work is split between
threads and no random state is shared.

* :func:`mix64` -- the splitmix64 finaliser, a bijective, well-mixing hash of
  a ``uint64``; ``mix64(key ^ mix64(counter + GOLDEN))`` seeds a stream.
* :func:`next64` -- one step of a splitmix64 stream: ``(state, 64 random bits)``.
* :func:`uniform` -- one step as a float64 uniform in ``[0, 1)``.

Every function is ``inline="always"``: it is copied into the calling kernel
at the numba IR level, so the call costs nothing in a hot loop.  The module
is private; its names carry no underscore because the module already does.
"""
import numba
import numpy as np

__all__ = ["GOLDEN", "mix64", "next64", "uniform"]

#: The splitmix64 increment, 2**64 / golden ratio (odd, so the counter visits
#: every uint64 before it repeats).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def mix64(z):
    """splitmix64 finaliser: a bijective, well-mixing hash of a uint64.

    Parameters
    ----------
    z : uint64

    Returns
    -------
    uint64
    """
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def next64(state):
    """Next step of a splitmix64 stream.

    Parameters
    ----------
    state : uint64
        Current stream state (e.g. from ``mix64`` of the caller's counters).

    Returns
    -------
    state : uint64
        The advanced state, to pass to the next call.
    z : uint64
        64 random bits.
    """
    state = state + GOLDEN
    return state, mix64(state)


@numba.njit(cache=True, inline="always")
def uniform(state):
    """Next step of a splitmix64 stream as a uniform float.

    Parameters
    ----------
    state : uint64
        Current stream state.

    Returns
    -------
    state : uint64
        The advanced state.
    u : float64
        Uniform in ``[0, 1)``: the top 53 bits of the draw, times ``2**-53``.
    """
    state, z = next64(state)
    return state, float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
