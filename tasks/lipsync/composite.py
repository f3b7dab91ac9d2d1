"""Putting a generated lower face into the frame: colour match, feathered (or Poisson) blend,
occluders kept in front, colour parameters smoothed over time so nothing flickers."""
from __future__ import annotations

import numpy as np

from tasks.lipsync.core import colour_transfer, feather


class Compositor:
    def __init__(self, mode: str = "feather", feather: float = 0.12, colour: bool = True,
                 colour_smoothing: float = 0.6, occluder_grow: float = 0.03, crossfade_frames: int = 2,
                 colour_gain: tuple[float, float] = (0.7, 1.4), crossfade_max_shape: float = 0.25,
                 dark_floor: float = 0.7, crossfade_mouth: bool = False):
        if mode not in ("feather", "poisson"):
            raise ValueError(f"blend mode {mode!r}: expected feather or poisson")
        self.mode, self.feather, self.colour = mode, float(feather), bool(colour)
        self.colour_smoothing, self.occluder_grow = float(colour_smoothing), float(occluder_grow)
        self.crossfade_frames = int(crossfade_frames)
        self.crossfade_max_shape = float(crossfade_max_shape)
        self.crossfade_mouth = bool(crossfade_mouth)
        self.dark_floor = float(dark_floor)
        self.colour_gain = (float(colour_gain[0]), float(colour_gain[1]))
        self.state: dict[int, tuple[np.ndarray, np.ndarray]] = {}

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
