"""The CPU default mouth generator: a per-speaker bank of the speaker's own mouth appearances.

Video Rewrite (Bregler et al., 1997) in miniature. From the source frames of one face track it
keeps aligned lower-face crops (a canonical frame fixed by the rigid landmarks: nose, eye corners),
indexed by mouth shape (gap/width/jaw, 0..1 of the speaker's range) and head pose (yaw, pitch).
For a run of target mouth shapes it selects one exemplar per frame by Viterbi (shape + pose cost,
smoothness cost between neighbours, free when the source's own next frame follows). Each chosen
exemplar is warped piecewise-affinely onto the face's current landmarks; the residual between the
exemplar's mouth and the target (shapes the bank lacks) is made up by moving the exemplar's lip and
chin landmarks before the warp. Every pixel painted comes from a real frame: teeth and tongue too.

A generator implements: `new_bank(track, landmarks, ranges)`, `Bank.wants(...)`, `Bank.add(...)`,
`plan(bank, targets, poses)` and `render(bank, index, frame, landmarks, target)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.face.geometry import RIGID, apply_similarity, eye_centers, interocular, similarity
from tasks.lipsync.core import FEATURES, BankIndex, select, shape_features

JAW_MESH = list(range(2, 15))
NOSE_MESH = list(range(29, 36))
MOUTH = list(range(48, 68))
MESH = JAW_MESH + NOSE_MESH + MOUTH
UPPER_LIP = [49, 50, 51, 52, 53, 61, 62, 63]
LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
CORNERS = [48, 54, 60, 64]
CHIN = {5: 0.3, 6: 0.6, 7: 0.9, 8: 1.0, 9: 0.9, 10: 0.6, 11: 0.3}
REGION_JAW = list(range(3, 14))
REGION_NOSE = [31, 32, 33, 34, 35]
REGION_CHIN = [5, 6, 7, 8, 9, 10, 11]
INTERPOLATIONS = {"linear": 1, "cubic": 2, "lanczos": 4}   # OpenCV's INTER_LINEAR, INTER_CUBIC, INTER_LANCZOS4


@dataclass
class Rendered:
    """One generated lower face: pixels for `roi` of the frame plus the masks the compositor needs."""

    roi: tuple[int, int, int, int]        # x0 y0 x1 y1, even-aligned
    patch: np.ndarray                     # (h, w, 3) uint8 BGR, warped exemplar
    region: np.ndarray                    # (h, w) bool: the lower-face area it may replace
    mouth: np.ndarray                     # (h, w) bool: the new lips and inner mouth (not skin)
    iod: float                            # the face's inter-ocular distance in pixels
    exemplar: int = -1
    tear: float = 0.0                     # how far the lips were opened beyond the exemplar's own (inter-ocular units)
    inner_from: int = -1                  # the wider exemplar whose inner mouth fills the opened lips (-1: none)
    lips: np.ndarray | None = None        # (20, 2) the new mouth's landmarks 48-67, patch pixels
    source_lips: np.ndarray | None = None # (20, 2) the current face's own landmarks 48-67, patch pixels


@dataclass
class Bank:
    track: int
    template: np.ndarray                  # (68, 2) canonical landmarks, crop pixels
    crop_size: tuple[int, int]            # w, h
    ranges: dict
    iod: float                            # canonical inter-ocular distance (px)
    max_iod: float = float("inf")         # exemplars of a larger face are stored scaled down to this
    rows: list = field(default_factory=list)          # faces.npz row per exemplar
    crops: list = field(default_factory=list)         # the source frame's own pixels around the lower face
    to_crop: list = field(default_factory=list)       # (2, 3) affine: canonical px -> that crop's px
    looks: list = field(default_factory=list)         # appearance descriptor of the mouth (unit vector)
    landmarks: list = field(default_factory=list)     # canonical (68, 2)
    poses: list = field(default_factory=list)         # yaw, pitch
    frames: list = field(default_factory=list)        # source frame
    visible: list = field(default_factory=list)       # the face stage's mouth visibility there (0..1)
    index: BankIndex | None = None
    features: np.ndarray | None = None
    descriptors: np.ndarray | None = None
    sequence: np.ndarray | None = None                # consecutive numbers for consecutive source frames
    still: bool = False                               # the source never moves (a photo): one exemplar, warped
    meshes: dict = field(default_factory=dict)        # exemplar -> triangles over its own mesh points
    donors: dict = field(default_factory=dict)        # (gap level, pose) -> exemplar lending its inner mouth

    def __len__(self) -> int:
        return len(self.crops)

    def to_canonical(self, landmarks: np.ndarray):
        return similarity(landmarks[RIGID].astype(float), self.template[RIGID])

    def add(self, frame: np.ndarray, landmarks: np.ndarray, pose, source_frame: int, row: int = -1,
            visibility: float = 1.0) -> None:
        """Keep the frame's pixels around the lower face as they are, with the map from canonical
        coordinates into them: a render then resamples the source once (warping into a canonical crop
        first and onto the face after took two bilinear passes and a third of the mouth's detail)."""
        import cv2

        transform = self.to_canonical(landmarks)
        scale, rotation, translation = transform
        inverse = rotation.T / scale
        width, height = self.crop_size
        corners = (np.array([[0, 0], [width, 0], [width, height], [0, height]], float) - translation) @ inverse.T
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, (frame.shape[1], frame.shape[0]))
        x0, y0 = min(x0, frame.shape[1] - 1), min(y0, frame.shape[0] - 1)
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        crop = frame[y0:y1, x0:x1]
        to_crop = np.hstack([inverse, (-inverse @ translation - (x0, y0))[:, None]])
        shrink = self.max_iod / interocular(landmarks)
        if shrink < 1.0:
            # a face larger than `max_canonical_iod` is kept at that size, as the canonical crops
            # were: a bank holds hundreds of them
            size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
            factor = np.array([size[0] / crop.shape[1], size[1] / crop.shape[0]])
            to_crop = to_crop * factor[:, None]
            to_crop[:, 2] += 0.5 * factor - 0.5        # resize keeps pixel centres, not corners, in place
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        self.crops.append(np.ascontiguousarray(crop))
        self.to_crop.append(to_crop)
        self.looks.append(mouth_look(frame, transform, self.template, self.iod))
        self.landmarks.append(apply_similarity(landmarks.astype(float), transform))
        self.poses.append((float(pose[0]), float(pose[1])))
        self.frames.append(int(source_frame))
        self.rows.append(int(row))
        self.visible.append(float(visibility))


def lips_mask(lips: np.ndarray, iod: float, shape: tuple[int, int]) -> np.ndarray:
    """The hull of lip points (pixels of an image of `shape`), grown by 0.08 inter-ocular: the lips
    and what lies between them."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lips).astype(np.int32)), 1)
    grow = max(1, int(0.08 * iod))
    return cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0


def mouth_look(frame: np.ndarray, to_canonical, template: np.ndarray, iod: float) -> np.ndarray:
    """The mouth's appearance for the selection's smoothness cost: the canonical mouth box (lips and
    0.15 inter-ocular around them) in grey at 24 x 16, zero-mean, unit length."""
    import cv2

    scale, rotation, translation = to_canonical
    mouth = template[48:60]
    pad = 0.15 * iod
    x0, y0 = np.maximum(mouth.min(0) - pad, 0).astype(int)
    x1, y1 = (mouth.max(0) + pad).astype(int)
    matrix = np.hstack([scale * rotation, (translation - (x0, y0))[:, None]])
    box = cv2.warpAffine(frame, matrix, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    small = cv2.resize(cv2.cvtColor(box, cv2.COLOR_BGR2GRAY), (24, 16), interpolation=cv2.INTER_AREA).astype(float).ravel()
    small -= small.mean()
    return small / max(np.linalg.norm(small), 1e-6)


def canonical_template(landmarks: np.ndarray, iod: float) -> tuple[np.ndarray, tuple[int, int]]:
    """A track's mean face (rigidly aligned), scaled to `iod` px between the eyes, eyes level, and
    translated into a lower-face crop. Returns (template (68, 2), (crop width, crop height))."""
    landmarks = np.asarray(landmarks, dtype=float)
    sample = landmarks[np.linspace(0, len(landmarks) - 1, min(len(landmarks), 200)).astype(int)]
    reference = sample[len(sample) // 2]
    mean = np.mean([apply_similarity(l, similarity(l[RIGID], reference[RIGID])) for l in sample], axis=0)
    eyes = np.stack(eye_centers(mean))
    canonical_eyes = np.array([[-iod / 2, 0.0], [iod / 2, 0.0]])
    shape = apply_similarity(mean, similarity(eyes, canonical_eyes))
    jaw = shape[2:15]
    x0, x1 = jaw[:, 0].min() - 0.25 * iod, jaw[:, 0].max() + 0.25 * iod
    y0, y1 = shape[28, 1], shape[6:11, 1].max() + 0.4 * iod
    shape = shape - (x0, y0)
    return shape, (int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))


def still_ranges(landmarks: np.ndarray, open_gap: float, jaw_span: float, width_span: float) -> dict:
    """Articulation ranges (inter-ocular units) for a face that never moves in the source, around its
    one pose: 0 = lips closed (the chin rises by about half the photo's own gap), 1 = opened to
    `open_gap` with the chin `jaw_span` lower, the width from `width_span` narrower to the photo's."""
    from tasks.visemes.calibration import mouth_measures

    measures = mouth_measures(np.asarray(landmarks, dtype=float)[None])
    gap, width, jaw = (float(measures[k][0]) for k in FEATURES)
    closed_jaw = jaw - 0.5 * gap
    return {"gap": [0.0, max(open_gap, gap)], "width": [width - width_span, width], "jaw": [closed_jaw, closed_jaw + jaw_span]}


INNER_UPPER = [61, 62, 63]
INNER_LOWER = [67, 66, 65]          # facing 61, 62, 63


def torn_mesh(points: np.ndarray) -> np.ndarray:
    """Triangles over an exemplar's mesh points (MESH, then anything else such as the crop border),
    followed by two copies of the inner mouth's midline (3 points each, the upper then the lower).

    Outside the inner lips: Delaunay. Inside: the upper copy closes a band hanging from the upper
    lip (the upper teeth), the lower copy a band standing on the lower lip, and the two copies
    close a third band between them that has no area in the exemplar: when the lips open wider
    than the exemplar's, the teeth stay with their lips and that band opens (the cavity)."""
    from tasks.lipsync.warp import triangles

    at = {landmark: MESH.index(landmark) for landmark in range(48, 68)}
    count = len(points) - 6
    upper, lower = [count, count + 1, count + 2], [count + 3, count + 4, count + 5]
    inner = {at[k] for k in range(60, 68)}
    outside = [t for t in triangles(points[:count]) if not set(int(v) for v in t) <= inner]

    def band(edge_a: list[int], edge_b: list[int]) -> list[list[int]]:
        out = []
        for (a0, a1), (b0, b1) in zip(zip(edge_a[:-1], edge_a[1:]), zip(edge_b[:-1], edge_b[1:])):
            out += [[a0, a1, b1], [a0, b1, b0]] if a0 != b0 else [[a0, a1, b1]]
        return out

    left, right = at[60], at[64]
    upper_lip = [left] + [at[k] for k in INNER_UPPER] + [right]
    lower_lip = [left] + [at[k] for k in INNER_LOWER] + [right]
    inside = (band(upper_lip, [left] + upper + [right]) + band([left] + lower + [right], lower_lip)
              + band([left] + upper + [right], [left] + lower + [right]))
    inside = [t for t in inside if len(set(t)) == 3]
    return np.vstack([np.asarray(outside, dtype=int).reshape(-1, 3), np.asarray(inside, dtype=int)])


def midline(exemplar: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torn midline: (src (6, 2), dst (6, 2)) in canonical pixels. In the exemplar both copies lie
    midway between the inner lips; in the target the upper copy follows the upper lip and the lower
    one the lower lip, scaled down together when the lips close beyond the exemplar's gap."""
    up_src, low_src = exemplar[INNER_UPPER], exemplar[INNER_LOWER]
    up_dst, low_dst = moved[INNER_UPPER], moved[INNER_LOWER]
    middle = (up_src + low_src) / 2
    have = np.linalg.norm(low_src - up_src, axis=1).mean()
    want = np.linalg.norm(low_dst - up_dst, axis=1).mean()
    scale = min(1.0, want / have) if have > 1e-6 else 0.0
    src = np.vstack([middle, middle])
    dst = np.vstack([up_dst + scale * (middle - up_src), low_dst + scale * (middle - low_src)])
    return src, dst


def band_coverage(polygon: np.ndarray, shape: tuple[int, int], supersample: int = 8) -> np.ndarray:
    """Share (0..1) of each pixel of an image of `shape` that lies inside `polygon` (pixel
    coordinates), by supersampling: a band a fraction of a pixel wide covers its pixels only by that
    fraction (a rasterised polygon is at least one pixel wide: a band that barely opened would
    otherwise be drawn as a dark line across the teeth)."""
    import cv2

    height, width = shape
    out = np.zeros((height, width), np.float32)
    polygon = np.asarray(polygon, dtype=float)
    x0, y0 = np.clip(np.floor(polygon.min(0)).astype(int) - 1, 0, None)
    x1, y1 = np.minimum(np.ceil(polygon.max(0)).astype(int) + 2, (width, height))
    if x1 <= x0 or y1 <= y0:
        return out
    s = int(supersample)
    fine = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    # pixel k spans [k - 0.5, k + 0.5]: fine pixel j of it spans [k - 0.5 + j / s, ...]
    points = np.round(((polygon - (x0, y0)) + 0.5) * s - 0.5).astype(np.int32)
    cv2.fillPoly(fine, [points], 255)
    out[y0:y1, x0:x1] = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return out


def cavity_shade(patch: np.ndarray, cavity: np.ndarray, strength: float, soften_px: float) -> np.ndarray:
    """Darken the opened band between the teeth: the exemplar's own midline pixels, stretched there by
    the warp, scaled by 1 - `strength` x the band's cover of each pixel (`cavity`: bool or 0..1),
    soft-edged over `soften_px`. Nothing is painted."""
    import cv2

    weight = np.clip(np.asarray(cavity, dtype=np.float32), 0, 1)
    if strength <= 0 or not weight.any():
        return patch
    if soften_px >= 1:
        size = int(2 * round(soften_px) + 1)
        weight = np.maximum(weight, cv2.GaussianBlur(weight, (size, size), soften_px / 2))
    shade = 1.0 - strength * np.clip(weight, 0, 1)
    return np.clip(patch.astype(np.float32) * shade[..., None] + 0.5, 0, 255).astype(np.uint8)


def exemplar_face(points: np.ndarray, down: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mask of where an exemplar's pixels are its face, in output pixels: bounded by its cheeks (jaw
    points 2-5 and 11-14) and the nose, open downward below its chin (points 5-11), where its neck
    may replace a dropped chin. `points`: its 68 landmarks placed in the output; `down`: a vector
    pointing down the face, long enough to reach below any chin in the region."""
    import cv2

    outline = np.vstack([points[[27]], points[2:6], points[5] + down, points[11] + down, points[11:15]])
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    return mask


def adjust_mouth(points: np.ndarray, have: np.ndarray, want: np.ndarray, iod: float, limit: float,
                 close_limit: float | None = None) -> np.ndarray:
    """Move an exemplar's lip and chin landmarks (canonical px) from measures `have` toward `want`
    (gap, width, jaw in inter-ocular units), each change at most `limit` inter-ocular distances; the
    gap may shrink by up to `close_limit` (closing squeezes real pixels away, it invents nothing)."""
    out = np.array(points, dtype=float)
    lower = np.full(3, -limit)
    lower[0] = -max(limit, close_limit if close_limit is not None else limit)
    delta = np.clip(np.asarray(want, dtype=float) - np.asarray(have, dtype=float), lower, limit) * iod
    d_gap, d_width, d_jaw = delta
    out[UPPER_LIP, 1] -= 0.35 * d_gap
    out[LOWER_LIP, 1] += 0.65 * d_gap
    out[CORNERS, 1] += 0.15 * d_gap
    width = max(np.linalg.norm(out[54] - out[48]), 1e-6)
    centre = out[MOUTH].mean(0)
    out[MOUTH, 0] = centre[0] + (out[MOUTH, 0] - centre[0]) * (width + d_width) / width
    for index, weight in CHIN.items():
        out[index, 1] += weight * d_jaw
    return out


INNER_RING = list(range(60, 68))      # the inner lips, in order around the mouth
INNER_OF_MOUTH = [k - 48 for k in INNER_RING]   # ... among the mouth's own points (landmarks 48-67)


def choose_donor(gaps: np.ndarray, poses: np.ndarray, want_gap: float, pose, pose_scale: float,
                 gap_scale: float) -> int:
    """The exemplar to lend its inner mouth to lips opened to `want_gap`: among those open at least
    that wide (or the widest, where none is), the nearest in pose, then in gap (a much wider one is
    squeezed more); -1 for an empty bank. `gaps` (K,) and `want_gap` in one unit, `gap_scale` too (the
    bank's: 0..1 of the speaker's range); `poses` (K, 2) yaw and pitch, degrees, over `pose_scale`."""
    gaps, poses = np.asarray(gaps, dtype=float), np.asarray(poses, dtype=float).reshape(-1, 2)
    if not len(gaps):
        return -1
    want_gap = min(want_gap, float(gaps.max()))    # none so wide: the widest there is
    wide = np.flatnonzero(gaps >= want_gap)
    cost = (((poses[wide] - np.asarray(pose, dtype=float)) / pose_scale) ** 2).sum(-1) + ((gaps[wide] - want_gap) / gap_scale) ** 2
    return int(wide[np.argmin(cost)])


def inner_mouth_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mouth points (20, 2: landmarks 48-67) -> (those points and the inner mouth's centre (21, 2),
    triangles over them: Delaunay outside the inner lips, a fan from the centre inside)."""
    from tasks.lipsync.warp import triangles

    points = np.asarray(points, dtype=float)
    inner = INNER_OF_MOUTH
    centre = len(points)
    outside = [t for t in triangles(points) if not set(int(v) for v in t) <= set(inner)]
    fan = [[centre, a, b] for a, b in zip(inner, inner[1:] + inner[:1])]
    return np.vstack([points, points[inner].mean(0)]), np.vstack([np.asarray(outside, int).reshape(-1, 3), fan])


def lend_inner_mouth(bank: Bank, donor: int, patch: np.ndarray, mouth: np.ndarray, share: float, soften_px: float,
                     interpolation: int) -> np.ndarray:
    """Fill the inner lips of a rendered lower face with those of exemplar `donor` (teeth, tongue and
    cavity of a real, wider-open mouth of this speaker), warped from its mouth landmarks onto the
    render's `mouth` (20, 2: landmarks 48-67 in patch pixels), its brightness matched on the lips
    around them, blended in at `share` with edges softened over `soften_px`. Returns the new patch."""
    import cv2

    from tasks.lipsync.warp import piecewise_affine

    src, tris = inner_mouth_mesh(bank.landmarks[donor][48:68])
    dst = np.vstack([mouth, mouth[INNER_OF_MOUTH].mean(0)])
    height, width = patch.shape[:2]
    x0, y0 = np.clip(np.floor(dst.min(0)).astype(int) - 1, 0, None)
    x1, y1 = np.minimum(np.ceil(dst.max(0)).astype(int) + 2, (width, height))
    if x1 - x0 < 3 or y1 - y0 < 3 or share <= 0:
        return patch
    lent, covered = piecewise_affine(bank.crops[donor], src, dst, (x0, y0, x1, y1), tris, bank.to_crop[donor], interpolation)
    corner = np.array([x0, y0], dtype=float)
    inside = band_coverage(mouth[INNER_OF_MOUTH] - corner, lent.shape[:2])
    if soften_px >= 1:
        size = int(2 * round(soften_px) + 1)
        inside = cv2.GaussianBlur(inside, (size, size), soften_px / 2)
    lips = (band_coverage(mouth[:12] - corner, lent.shape[:2]) > 0.5) & (inside < 0.05) & covered
    here = patch[y0:y1, x0:x1].astype(np.float32)
    # one brightness gain, measured on the lips around: both are this speaker's own frames, and a
    # per-channel fit on saturated red lips turns white teeth pink (the compositor matches the colour
    # of the whole render to the frame after)
    gain = float(np.clip(here[lips].mean() / max(float(lent[lips].mean()), 1.0), 0.8, 1.25)) if lips.sum() >= 8 else 1.0
    matched = lent.astype(np.float32) * gain
    alpha = (share * inside * covered)[..., None]
    out = patch.copy()
    out[y0:y1, x0:x1] = np.clip(here * (1 - alpha) + matched * alpha + 0.5, 0, 255).astype(np.uint8)
    return out


class ExemplarGenerator:
    name = "exemplar"

    def __init__(self, bank_size: int = 400, min_canonical_iod: float = 48.0, max_canonical_iod: float = 140.0,
                 weights: dict | None = None, pose_weight: float = 0.5, pose_scale: float = 10.0,
                 smoothness: float = 0.6, hold_cost: float = 0.02, candidates: int = 24,
                 adjust_limit: float = 0.06, min_bank: int = 8, run_length: int = 8, chin_margin: float = 0.0,
                 still: dict | None = None, cavity_shading: float = 0.75, close_limit: float = 0.06,
                 closure_weight: float = 0.0, interpolation: str = "cubic", tear_weight: float = 0.0,
                 borrow_inner: float | None = None, donor_min_visibility: float = 0.95):
        self.bank_size = int(bank_size)
        self.min_canonical_iod = float(min_canonical_iod)
        self.max_canonical_iod = float(max_canonical_iod)
        self.weights = np.array([float((weights or {}).get(k, d)) for k, d in zip(FEATURES, (1.0, 0.5, 0.5))])
        self.pose_weight, self.pose_scale = float(pose_weight), float(pose_scale)
        self.smoothness, self.hold_cost = float(smoothness), float(hold_cost)
        self.candidates = int(candidates)
        self.adjust_limit = float(adjust_limit)
        self.min_bank = int(min_bank)
        self.run_length = int(run_length)
        self.chin_margin = float(chin_margin)
        still = {"max_spread": 0.02, "open_gap": 0.22, "jaw_span": 0.12, "width_span": 0.08, "adjust_limit": 0.35, **(still or {})}
        self.still = {k: float(v) for k, v in still.items()}
        self.cavity_shading = float(cavity_shading)
        self.close_limit = float(close_limit)
        self.closure_weight = float(closure_weight)
        self.tear_weight = float(tear_weight)
        self.borrow_inner = None if borrow_inner is None else float(borrow_inner)
        self.donor_min_visibility = float(donor_min_visibility)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"lipsync interpolation {interpolation!r}: choose from {sorted(INTERPOLATIONS)}")
        self.interpolation = INTERPOLATIONS[interpolation]

    # ------------------------------------------------------------ bank
    def new_bank(self, track: int, landmarks: np.ndarray, ranges: dict) -> Bank:
        from tasks.visemes.calibration import inter_ocular

        # the crops keep the face's own resolution, within bounds
        iod = float(np.clip(np.median(inter_ocular(np.asarray(landmarks, dtype=float))), self.min_canonical_iod, self.max_canonical_iod))
        template, size = canonical_template(landmarks, iod)
        return Bank(track, template, size, ranges, iod, self.max_canonical_iod)

    def choose_rows(self, usable_rows: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Which usable rows (sorted by frame) go in the bank: all, or short runs of neighbouring
        frames spread evenly over the video (runs, so that real motion can be replayed)."""
        usable_rows = np.asarray(usable_rows)
        if len(usable_rows) <= self.bank_size:
            return usable_rows
        chunk = max(1, min(self.run_length, self.bank_size))
        starts = np.linspace(0, len(usable_rows) - chunk, max(1, self.bank_size // chunk)).round().astype(int)
        keep = np.unique(np.concatenate([np.arange(a, a + chunk) for a in starts]))
        return usable_rows[keep]

    def finish(self, bank: Bank) -> Bank:
        from tasks.visemes.calibration import mouth_measures

        lm = np.array(bank.landmarks)
        if len(lm):
            measures = mouth_measures(lm)
            spread = max(float(np.percentile(measures[k], 95) - np.percentile(measures[k], 5)) for k in ("gap", "jaw"))
            if spread < self.still["max_spread"]:
                # a photo (or a face that never moves): one exemplar, every shape by warping it, with
                # this face's own articulation ranges (the measured ones have no span)
                keep = len(lm) // 2
                for name in ("rows", "crops", "to_crop", "looks", "landmarks", "poses", "frames", "visible"):
                    setattr(bank, name, [getattr(bank, name)[keep]])
                bank.still = True
                bank.ranges = still_ranges(bank.landmarks[0], self.still["open_gap"], self.still["jaw_span"], self.still["width_span"])
                lm = np.array(bank.landmarks)
        bank.features = shape_features(lm, bank.ranges)
        bank.index = BankIndex(bank.features, np.array(bank.poses), self.weights, self.pose_weight, self.pose_scale,
                               self.closure_weight, tear_weight=self.tear_weight)
        bank.descriptors = np.array(bank.looks)
        frames = np.array(bank.frames)
        steps = np.where(np.diff(frames, prepend=frames[:1] - 1) == 1, 1, 2) if len(frames) else frames
        bank.sequence = np.cumsum(steps)
        return bank

    # ------------------------------------------------------------ selection
    def plan(self, bank: Bank, targets: np.ndarray, poses: np.ndarray) -> np.ndarray:
        """Exemplar per frame for one run of target shapes (T, 3) 0..1 and poses (T, 2)."""
        return select(bank.index, targets, poses, bank.sequence, bank.descriptors, self.smoothness,
                      self.hold_cost, self.candidates)

    # ------------------------------------------------------------ rendering
    def render(self, bank: Bank, index: int, frame_shape: tuple[int, int], landmarks: np.ndarray,
               target: np.ndarray) -> Rendered | None:
        """Warp exemplar `index` onto a face with `landmarks`, lips moved to the target shape (0..1)."""
        import cv2

        from tasks.visemes.calibration import mouth_measures

        height, width = frame_shape
        exemplar = bank.landmarks[index]
        have = np.array([mouth_measures(exemplar[None])[k][0] for k in FEATURES])
        want = np.array([lo + t * (hi - lo) for t, (lo, hi) in zip(target, (bank.ranges[k] for k in FEATURES))])
        limit = self.still["adjust_limit"] if bank.still else self.adjust_limit
        moved = adjust_mouth(exemplar, have, want, bank.iod, limit, self.close_limit)
        tear = float(np.clip(want[0] - have[0], 0.0, limit))
        to_frame = similarity(bank.template[RIGID], landmarks[RIGID].astype(float))
        cw, ch = bank.crop_size
        border = np.array([[0, 0], [cw / 2, 0], [cw - 1, 0], [cw - 1, ch / 2], [cw - 1, ch - 1], [cw / 2, ch - 1],
                           [0, ch - 1], [0, ch / 2]], dtype=float)
        tear_src, tear_dst = midline(exemplar, moved)
        src = np.vstack([exemplar[MESH], border, tear_src])
        dst = apply_similarity(np.vstack([moved[MESH], border, tear_dst]), to_frame)
        corners = dst[len(MESH):len(MESH) + 8]
        x0, y0 = np.floor(corners.min(0)).astype(int) // 2 * 2
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1 + (x1 - x0) % 2, width - width % 2), min(y1 + (y1 - y0) % 2, height - height % 2)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        from tasks.lipsync.warp import piecewise_affine

        if index not in bank.meshes:
            bank.meshes[index] = torn_mesh(src)   # one mesh per exemplar: its triangles keep their lips
        patch, covered = piecewise_affine(bank.crops[index], src, dst, (x0, y0, x1, y1), bank.meshes[index],
                                          bank.to_crop[index], self.interpolation)
        offset = np.array([x0, y0], dtype=float)
        dst_lm = apply_similarity(moved, to_frame)
        iod_px = interocular(landmarks)
        opened = dst[-6:-3] - dst[-3:]
        if self.cavity_shading > 0 and np.linalg.norm(opened, axis=1).max() > 0.5:
            at = {k: MESH.index(k) for k in (60, 64)}
            band = np.vstack([dst[at[60]], dst[-6:-3], dst[at[64]], dst[-3:][::-1]]) - offset
            patch = cavity_shade(patch, band_coverage(band, patch.shape[:2]), self.cavity_shading, 0.02 * iod_px)
        inner_from = -1
        if self.borrow_inner is not None and not bank.still and tear > 0.5 * self.borrow_inner:
            inner_from = self.donor(bank, float(target[0]), bank.poses[index])
            if inner_from >= 0 and bank.features[inner_from, 0] > bank.features[index, 0]:
                # faded in from half the threshold: an inner mouth that comes and goes with each
                # frame's tear would flicker
                share = min(1.0, (tear - 0.5 * self.borrow_inner) / max(0.5 * self.borrow_inner, 1e-6))
                patch = lend_inner_mouth(bank, inner_from, patch, apply_similarity(moved[48:68], to_frame) - offset,
                                         share, 0.01 * iod_px, self.interpolation)
            else:
                inner_from = -1
        # the region reaches `chin_margin` below both chins, so the chin's outline is the exemplar's
        # (a closed mouth over the original dropped jaw reads as open) and the seam lies on the neck
        down = to_frame[1] @ np.array([0.0, 1.0])
        below = self.chin_margin * iod_px * down
        hull_points = np.vstack([dst_lm[REGION_JAW], landmarks[REGION_JAW], dst_lm[REGION_NOSE],
                                 dst_lm[REGION_CHIN] + below, landmarks[REGION_CHIN] + below]) - offset
        region = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(region, cv2.convexHull(np.round(hull_points).astype(np.int32)), 1)
        # ... but never beyond the exemplar's own cheeks: where the current face is wider at a side
        # (pose, alignment), the exemplar's pixels there are its hair or background
        region &= exemplar_face(dst_lm - offset, 2.0 * iod_px * down, region.shape)
        mouth = lips_mask(np.vstack([dst_lm[48:60], landmarks[48:60]]) - offset, iod_px, region.shape)
        return Rendered((x0, y0, x1, y1), patch, (region > 0) & covered, mouth, iod_px, index, tear, inner_from,
                        dst_lm[48:68] - offset, landmarks[48:68] - offset)

    def donor(self, bank: Bank, target_gap: float, pose) -> int:
        """The exemplar lending its inner mouth to lips opened to `target_gap` (0..1 of the range),
        chosen for the target rounded up to a tenth of the range and the pose to 5 degrees, and kept
        for them: one donor's teeth over a run of frames, not a new set every frame."""
        level = float(np.ceil(round(target_gap * 10, 6)) / 10)
        pose = tuple(float(v) for v in 5 * np.round(np.asarray(pose, dtype=float)[:2] / 5))
        key = (level, pose)
        if key not in bank.donors:
            # a donor's whole inner mouth is shown: none from a frame where anything crossed the mouth
            clear = np.flatnonzero(np.array(bank.visible) >= self.donor_min_visibility)
            pick = choose_donor(bank.features[clear, 0], np.array(bank.poses)[clear], level, pose, self.pose_scale, 0.2)
            bank.donors[key] = int(clear[pick]) if pick >= 0 else -1
        return bank.donors[key]
