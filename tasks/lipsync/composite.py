"""Putting a generated lower face into the frame: colour match, feathered (or Poisson) blend,
occluders kept in front, colour parameters smoothed over time so nothing flickers."""
from __future__ import annotations

import numpy as np

from tasks.lipsync.core import colour_transfer, feather, lips_ring


class Compositor:
    def __init__(self, mode: str = "feather", feather: float = 0.12, colour: bool = True,
                 colour_smoothing: float = 0.6, occluder_grow: float = 0.03, crossfade_frames: int = 2,
                 colour_gain: tuple[float, float] = (0.7, 1.4), crossfade_max_shape: float = 0.25,
                 dark_floor: float = 0.7, crossfade_mouth: bool = False, lips_colour: bool = True,
                 lips_shift_limit: tuple[float, float] = (15.0, 10.0), lips_min_px: int = 100):
        if mode not in ("feather", "poisson"):
            raise ValueError(f"blend mode {mode!r}: expected feather or poisson")
        self.mode, self.feather, self.colour = mode, float(feather), bool(colour)
        self.colour_smoothing, self.occluder_grow = float(colour_smoothing), float(occluder_grow)
        self.crossfade_frames = int(crossfade_frames)
        self.crossfade_max_shape = float(crossfade_max_shape)
        self.crossfade_mouth = bool(crossfade_mouth)
        self.dark_floor = float(dark_floor)
        self.colour_gain = (float(colour_gain[0]), float(colour_gain[1]))
        self.lips_colour = bool(lips_colour)
        self.lips_shift_limit = (float(lips_shift_limit[0]), float(lips_shift_limit[1]))
        self.lips_min_px = int(lips_min_px)
        self.state: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.lips_state: dict[int, np.ndarray] = {}

    def mix(self, rendered, other, weight: float):
        """Cross-dissolve two renders of one face (same ROI): `weight` of `other`. Unless
        `crossfade_mouth`, only the skin dissolves: inside either render's mouth the new one shows
        alone (two sets of teeth half over each other read as a double exposure), the edge feathered
        over 0.04 inter-ocular."""
        if other is None or other.roi != rendered.roi or weight <= 0:
            return rendered
        if not self.crossfade_mouth:
            mouth = feather(rendered.mouth | other.mouth, 0.04 * rendered.iod)
            weight = weight * (1.0 - mouth[..., None])
        patch = rendered.patch.astype(np.float32) * (1 - weight) + other.patch.astype(np.float32) * weight
        rendered.patch = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
        rendered.region = rendered.region | other.region
        rendered.mouth = rendered.mouth | other.mouth
        return rendered

    def reset(self, track: int) -> None:
        self.state.pop(track, None)
        self.lips_state.pop(track, None)

    def match_lips(self, lab_patch: np.ndarray, lab_frame: np.ndarray, rendered, covered: np.ndarray | None,
                   track: int) -> np.ndarray:
        """Shift the new lips' Lab median onto the current face's own lips' (the frame's pixels at its
        landmarks), that target smoothed over frames like the skin's colour and held while anything
        covers the mouth. Exemplars from other moments light the lips differently, and the skin-matched
        render kept those differences: the lips changed colour at each switch of exemplar (head_turns:
        frame-to-frame lip lightness change x1.5 of the source's). Only the lips move (and 0.015
        inter-ocular round them, fading); at most `lips_shift_limit` (L, a/b). Not on lips of fewer than
        `lips_min_px` pixels (faces under about 50 px between the eyes): there dlib's lip outline takes
        in skin, beard or teeth, and the colour it reads is theirs."""
        import cv2

        # everything within the box round both mouths (and the fade's margin): the patch is the
        # whole lower face
        grow = max(1, int(round(0.015 * rendered.iod)))
        height, width = lab_patch.shape[:2]
        both = np.vstack([rendered.lips, rendered.source_lips])
        x0, y0 = np.clip(np.floor(both.min(0)).astype(int) - 2 * grow - 2, 0, None)
        x1, y1 = np.minimum(np.ceil(both.max(0)).astype(int) + 2 * grow + 3, (width, height))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return lab_patch
        corner, shape = np.array([x0, y0], dtype=float), (y1 - y0, x1 - x0)
        box = (slice(y0, y1), slice(x0, x1))
        new, own = lips_ring(rendered.lips - corner, shape), lips_ring(rendered.source_lips - corner, shape)
        if new.sum() < self.lips_min_px:
            return lab_patch
        target = self.lips_state.get(track)
        if own.sum() >= self.lips_min_px and (covered is None or not (covered[box] & own).any()):
            seen = np.median(lab_frame[box][own], axis=0)
            s = self.colour_smoothing
            target = seen if target is None else s * target + (1 - s) * seen
            self.lips_state[track] = target
        if target is None:
            return lab_patch
        light, chroma = self.lips_shift_limit
        shift = np.clip(target - np.median(lab_patch[box][new], axis=0), [-light, -chroma, -chroma], [light, chroma, chroma])
        # the whole lip at full weight, fading out over `grow` beyond its outline: dlib's contour lies
        # a pixel or two inside the lip's edge, and a fade inside it left a rim of the old colour
        ring = cv2.dilate(lips_ring(rendered.lips - corner, shape, 0).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        out = lab_patch.copy()
        out[box] += feather(ring, grow)[..., None] * shift.astype(np.float32)
        return out

    def blend(self, frame: np.ndarray, rendered, weight: float, covered: np.ndarray | None, track: int):
        """Blend `rendered` into a copy of frame's ROI. Returns (new ROI pixels uint8, alpha (h, w) float32)."""
        import cv2

        x0, y0, x1, y1 = rendered.roi
        original = frame[y0:y1, x0:x1]
        patch = rendered.patch
        alpha = feather(rendered.region, self.feather * rendered.iod)
        if self.colour:
            ring = rendered.region & ~rendered.mouth & (alpha > 0.05)
            lab_patch = cv2.cvtColor(patch.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
            lab_frame = cv2.cvtColor(original.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
            gain, offset = colour_transfer(lab_patch, lab_frame, ring, self.colour_gain)
            if track in self.state:
                s = self.colour_smoothing
                gain, offset = s * self.state[track][0] + (1 - s) * gain, s * self.state[track][1] + (1 - s) * offset
            self.state[track] = (gain, offset)
            matched = lab_patch * gain.astype(np.float32) + offset.astype(np.float32)
            # a contrast gain with a negative offset would crush the darkest pixels (the mouth's
            # cavity, a beard) to black: lightness falls at most to `dark_floor` of its own
            matched[..., 0] = np.maximum(matched[..., 0], self.dark_floor * lab_patch[..., 0])
            lab_patch = matched
            if self.lips_colour and getattr(rendered, "lips", None) is not None and getattr(rendered, "source_lips", None) is not None:
                lab_patch = self.match_lips(lab_patch, lab_frame, rendered, covered, track)
            patch = np.clip(cv2.cvtColor(lab_patch, cv2.COLOR_Lab2BGR) * 255 + 0.5, 0, 255).astype(np.uint8)
        if self.mode == "poisson":
            inner = (alpha > 0.01).astype(np.uint8) * 255
            ys, xs = np.nonzero(inner)
            if len(xs) and xs.min() > 1 and ys.min() > 1 and xs.max() < inner.shape[1] - 2 and ys.max() < inner.shape[0] - 2:
                x_lo, x_hi, y_lo, y_hi = xs.min(), xs.max(), ys.min(), ys.max()
                centre = (int((x_lo + x_hi + 1) // 2), int((y_lo + y_hi + 1) // 2))
                try:
                    patch = cv2.seamlessClone(patch, original.copy(), inner, centre, cv2.NORMAL_CLONE)
                except cv2.error:
                    pass
        if covered is not None and covered.any():
            grow = max(1, int(self.occluder_grow * rendered.iod))
            covered = cv2.dilate(covered.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
            alpha = alpha * ~covered
        alpha = (alpha * float(weight)).astype(np.float32)
        out = original.astype(np.float32) * (1 - alpha[..., None]) + patch.astype(np.float32) * alpha[..., None]
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), alpha
