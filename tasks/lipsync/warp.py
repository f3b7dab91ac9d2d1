"""Piecewise-affine warp of an image by a triangle mesh (one remap for the whole region)."""
from __future__ import annotations

import numpy as np


def triangles(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (M, 3) over 2-D points (duplicates are tolerated)."""
    from scipy.spatial import Delaunay

    return Delaunay(np.asarray(points, dtype=float), qhull_options="QJ").simplices


def piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray, roi: tuple[int, int, int, int],
                     tris: np.ndarray | None = None, image_affine: np.ndarray | None = None,
                     interpolation: int = 1, min_height: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` so that its points `src` land on `dst` (both (P, 2), dst in the output's pixels).

    Only the output region roi = (x0, y0, x1, y1) is computed. `image_affine` (2, 3): where the `src`
    coordinates lie in `image` (None: they are its pixels), folded into the one resampling.
    `interpolation`: OpenCV's flag (1 linear, 2 cubic). Triangles under `min_height` output pixels high
    are left to their neighbours. Returns (warped (h, w, C) uint8, covered
    (h, w) bool: pixels inside the mesh).
    """
    import cv2

    x0, y0, x1, y1 = roi
    w, h = x1 - x0, y1 - y0
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64) - (x0, y0)
    tris = triangles(dst) if tris is None else tris
    ids = np.full((h, w), -1, dtype=np.int32)
    affines = np.zeros((len(tris), 2, 3))
    corners = dst[np.asarray(tris, dtype=int)]                                     # (M, 3, 2)
    edges = corners[:, [1, 2, 0]] - corners
    areas = np.abs(edges[:, 0, 0] * edges[:, 2, 1] - edges[:, 0, 1] * edges[:, 2, 0])   # twice the area
    heights = areas / np.maximum(np.linalg.norm(edges, axis=2).max(axis=1), 1e-6)
    # a sliver (the closed midline of a torn mesh, a lip corner squeezed flat) is rasterised as a line
    # of pixels, and its near-singular affine sends them anywhere in the image (speckles
    # of lip, teeth and cavity across the mouth): its neighbours' edges cover that line
    drawn = (areas >= 1e-3) & (heights >= min_height)
    for n, tri in enumerate(tris):
        if not drawn[n]:
            continue
        d = dst[tri]
        affines[n] = cv2.getAffineTransform(d.astype(np.float32), src[tri].astype(np.float32))
        cv2.fillConvexPoly(ids, np.round(d * 16).astype(np.int32), int(n), lineType=cv2.LINE_8, shift=4)
    if image_affine is not None:
        # composed once per triangle, not per pixel
        m = np.asarray(image_affine, dtype=np.float64)
        affines = np.concatenate([m[:, :2] @ affines[:, :, :2], (m[:, :2] @ affines[:, :, 2:]) + m[:, 2:]], axis=2)
    covered = ids >= 0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = affines[np.maximum(ids, 0)].astype(np.float32)
    map_x = a[..., 0, 0] * xx + a[..., 0, 1] * yy + a[..., 0, 2]
    map_y = a[..., 1, 0] * xx + a[..., 1, 1] * yy + a[..., 1, 2]
    map_x[~covered] = -1
    map_y[~covered] = -1
    warped = cv2.remap(image, map_x, map_y, int(interpolation), borderMode=cv2.BORDER_REPLICATE)
    return warped, covered
