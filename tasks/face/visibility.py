"""Mouth visibility: how much of a face's mouth is covered, by what, and where (a mask).

The face's own skin colour is measured on its cheeks and nose bridge in every frame; around the
mouth (the lips and a margin, never the mouth cavity, which is dark or shows teeth), a pixel whose
colour is neither that skin nor lip red is "foreign": a microphone, a sleeve, an object. A hand is
skin coloured, so it is found the other way: the lips lose their redness against the skin
(`lip_contrast`), judged against the same track's usual contrast after tracking (`hidden_lips`).
Another tracked face whose box covers the mouth is an occluding person.
"""
from __future__ import annotations

import numpy as np

from tasks.face.geometry import interocular

MASK_SHAPE = (32, 48)  # rows, columns of the stored mask, stretched over the mouth box
NONE, OBJECT, SKIN, PERSON = 0, 1, 2, 3
OCCLUDERS = {NONE: "none", OBJECT: "object", SKIN: "hand_or_skin", PERSON: "person"}


def mouth_box(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """The mouth region (lips, philtrum, upper chin) in source pixels, (x0, y0, x1, y1) ints."""
    lips = landmarks[48:60]
    (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
    w = x1 - x0
    h = max(y1 - y0, 0.3 * w)
    box = np.array([x0 - 0.25 * w, y0 - 0.45 * h, x1 + 0.25 * w, y1 + 0.5 * h])
    box = np.round(box).astype(int)
    box[[0, 2]] = np.clip(box[[0, 2]], 0, width - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, height - 1)
    return box


def _patch(ycc: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    r = max(2, int(radius))
    x, y = int(centre[0]), int(centre[1])
    crop = ycc[max(0, y - r): y + r + 1, max(0, x - r): x + r + 1]
    return crop.reshape(-1, 3)


def skin_reference(ycc: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and spread (YCrCb) of the cheeks and the nose bridge."""
    iod = interocular(landmarks)
    centres = [(landmarks[31] + landmarks[2]) / 2, (landmarks[35] + landmarks[14]) / 2,
               (landmarks[28] + landmarks[29]) / 2]
    pixels = np.concatenate([_patch(ycc, c, 0.08 * iod) for c in centres]).astype(np.float64)
    if len(pixels) == 0:
        return np.array([128.0, 150.0, 110.0]), np.array([40.0, 8.0, 8.0])
    median = np.median(pixels, axis=0)
    spread = 1.4826 * np.median(np.abs(pixels - median), axis=0)
    return median, spread


def mouth_visibility(frame_bgr: np.ndarray, landmarks: np.ndarray, other_boxes: np.ndarray | None = None,
                     chroma_tol: float = 10.0, lip_red: float = 30.0, dark: float = 0.35, bright: float = 1.9
                     ) -> tuple[float, np.ndarray, np.ndarray, int, float]:
    """(score 0..1, mask MASK_SHAPE uint8 (255 = covered), mouth box, occluder code, lip contrast)."""
    import cv2

    height, width = frame_bgr.shape[:2]
    box = mouth_box(landmarks, width, height)
    x0, y0, x1, y1 = box
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0, np.full(MASK_SHAPE, 255, np.uint8), box, NONE, 0.0
    # skin reference from a small neighbourhood of the whole face, in full resolution
    fx0, fy0 = np.maximum(landmarks.min(axis=0).astype(int) - 2, 0)
    fx1, fy1 = landmarks.max(axis=0).astype(int) + 3
    face = cv2.cvtColor(frame_bgr[fy0:fy1, fx0:fx1], cv2.COLOR_BGR2YCrCb)
    skin, spread = skin_reference(face, landmarks - [fx0, fy0])
    rows, cols = MASK_SHAPE
    crop = cv2.resize(frame_bgr[y0:y1, x0:x1], (cols, rows), interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb).astype(np.float64)
    scale = np.array([cols / (x1 - x0), rows / (y1 - y0)])
    local = (landmarks - [x0, y0]) * scale
    outer = np.zeros(MASK_SHAPE, np.uint8)
    cv2.fillPoly(outer, [np.round(local[48:60]).astype(np.int32)], 1)
    cavity = np.zeros(MASK_SHAPE, np.uint8)
    cv2.fillPoly(cavity, [np.round(local[60:68]).astype(np.int32)], 1)
    centre = local[48:60].mean(axis=0)
    grown = np.zeros(MASK_SHAPE, np.uint8)
    cv2.fillPoly(grown, [np.round(centre + 1.35 * (local[48:60] - centre)).astype(np.int32)], 1)
    # the shadow along the line between the lips belongs to the mouth, not to an occluder
    cavity = cv2.dilate(cavity, np.ones((3, 3), np.uint8))
    region = (grown > 0) & (cavity == 0)
    lips = (outer > 0) & (cavity == 0)
    tol = np.maximum(chroma_tol, 3 * spread[1:])
    d_cr = ycc[..., 1] - skin[1]
    d_cb = ycc[..., 2] - skin[2]
    # lipstick and lip liner shift the lips' blue-difference far from the skin's, so on the lips
    # only redness lost (grey, black or blue objects), darkness and glare count
    foreign = ((np.abs(d_cb) > tol[1] + 4) & ~lips) | (d_cr < -tol[0]) | (d_cr > lip_red + tol[0]) \
        | (ycc[..., 0] < dark * skin[0]) | (ycc[..., 0] > bright * max(skin[0], 40.0))
    foreign &= region
    foreign = cv2.morphologyEx(foreign.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0
    covered = float(foreign.sum()) / max(int(region.sum()), 1)
    lip_contrast = float(np.median(d_cr[lips])) if lips.any() else 0.0
    darkness = mouth_line_darkness(ycc[..., 0], cavity > 0, skin[0])
    code = OBJECT if covered > 0.15 else NONE
    if other_boxes is not None and len(other_boxes):
        mouth_centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        for ob in np.asarray(other_boxes).reshape(-1, 4):
            if ob[0] <= mouth_centre[0] <= ob[2] and ob[1] <= mouth_centre[1] <= ob[3]:
                code = PERSON
                covered = max(covered, 0.5)
    return float(np.clip(1.0 - covered, 0.0, 1.0)), (foreign * 255).astype(np.uint8), box, code, (lip_contrast, darkness)


def mouth_line_darkness(luma: np.ndarray, between_lips: np.ndarray, skin_luma: float) -> float:
    """How much darker than the skin the darkest part between the lips is (0: not at all, 1: black).

    A visible mouth always has dark pixels there, the shadow between closed lips, the open cavity
    or the gaps beside the teeth, whatever the lip colour; a hand or any smooth cover does not.
    """
    values = luma[between_lips]
    if not len(values) or skin_luma <= 1:
        return 0.0
    return float(np.clip(1.0 - np.percentile(values, 5) / skin_luma, 0.0, 1.0))


def hidden_lips(lip_contrast: np.ndarray, darkness: np.ndarray | None = None, ratio: float = 0.3,
                min_typical: float = 4.0, dark_ratio: float = 0.6, min_typical_dark: float = 0.12) -> np.ndarray:
    """Frames of one track where a skin-coloured cover (a hand) hides the mouth: the lips lost their
    redness against the skin, or the dark line between the lips is gone.

    Each cue is judged against the track's own typical value (its 75th percentile), so pale lips,
    a colour cast or a low-contrast face do not count; a cue the track never shows is not used.
    """
    lip_contrast = np.asarray(lip_contrast, dtype=np.float64)
    hidden = np.zeros(len(lip_contrast), bool)
    if len(lip_contrast) == 0:
        return hidden
    typical = float(np.percentile(lip_contrast, 75))
    if typical >= min_typical:
        hidden |= lip_contrast < ratio * typical
    if darkness is not None:
        darkness = np.asarray(darkness, dtype=np.float64)
        typical_dark = float(np.percentile(darkness, 75))
        if typical_dark >= min_typical_dark:
            hidden |= darkness < dark_ratio * typical_dark
    return hidden


def discount_own_features(masks: np.ndarray, visibility: np.ndarray, occluder: np.ndarray,
                          persistent: float = 0.8, min_frames: int = 25, object_share: float = 0.15) -> None:
    """Remove from one track's masks what is "foreign" in nearly all of its frames, in place.

    A beard, a moustache, lipstick or a piercing differs from the cheek colour in every frame at
    the same place on the mouth; a hand or a microphone comes and goes, or moves. Pixels foreign
    in more than `persistent` of the frames are the face's own; the covered share of each OBJECT
    frame shrinks accordingly, and a frame left under `object_share` is no longer occluded.
    A track shorter than `min_frames` is left as it is (too few frames to tell).
    """
    if len(masks) < min_frames:
        return
    covered = masks > 0
    own = covered.mean(axis=0) > persistent
    if not own.any():
        return
    for i in np.flatnonzero(occluder == OBJECT):
        before = int(covered[i].sum())
        after = int((covered[i] & ~own).sum())
        share = (1.0 - float(visibility[i])) * after / max(before, 1)
        visibility[i] = 1.0 - share
        if share <= object_share:
            occluder[i] = NONE
    masks[:, own] = 0
