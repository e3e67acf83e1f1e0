"""Image helpers of the explorer views: contrast scaling, PNG data-URLs, downsampling."""
from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["MAX_IMAGE_SIDE", "robust_uint8", "png_data_url", "thumbnails", "downsample_image", "padded_range"]

#: the micrograph is shown downsampled to at most this many pixels on a side
MAX_IMAGE_SIDE = 1024


def robust_uint8(a, lo_pct=1.0, hi_pct=99.5):
    """``a`` scaled to uint8 between two percentiles (outliers clipped)."""
    a = np.asarray(a, dtype=np.float32)
    lo, hi = np.percentile(a, [lo_pct, hi_pct])
    return (np.clip((a - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)


def png_data_url(arr):
    """A grayscale PNG data-URL of a 2-D array at its own size (robustly scaled to 0..255)."""
    from PIL import Image

    img = Image.fromarray(robust_uint8(arr), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def thumbnails(patches):
    """One PNG data-URL per patch (native size; the tooltip scales them up pixelated)."""
    from PIL import Image

    p = np.asarray(patches, dtype=np.float32)
    n = len(p)
    if n == 0:
        return []
    # one robust scale per patch, vectorised
    lo = np.percentile(p.reshape(n, -1), 1, axis=1)[:, None, None]
    hi = np.percentile(p.reshape(n, -1), 99.5, axis=1)[:, None, None]
    u8 = (np.clip((p - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
    out = []
    for a in u8:
        buf = io.BytesIO()
        Image.fromarray(a, mode="L").save(buf, format="PNG", compress_level=1)
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


def downsample_image(img, max_side=MAX_IMAGE_SIDE):
    """Block-mean downsample so the longer side is at most ``max_side``; returns (image, factor)."""
    img = np.asarray(img, dtype=np.float32)
    f = int(np.ceil(max(img.shape) / max_side))
    if f <= 1:
        return img, 1
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3)), f


def padded_range(v, pad=0.05):
    """``(lo, hi)`` of ``v`` widened by ``pad`` of its span on each side."""
    lo, hi = float(np.min(v)), float(np.max(v))
    d = (hi - lo) or 1.0
    return lo - pad * d, hi + pad * d
