"""Pure landmark geometry: the 68-point scheme, head pose, mouth opening, similarity fits, jitter.

Coordinates are image pixels (x right, y down). Nothing here touches a model or a file.
"""
from __future__ import annotations

import math

import numpy as np

# the iBUG 300-W 68-point scheme (dlib's order)
JAW = slice(0, 17)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)  # the subject's right eye: image left
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)  # the 20 mouth points
OUTER_LIPS = list(range(48, 60))
INNER_LIPS = list(range(60, 68))
# points that do not move with expression or speech: nose bridge and base, eye corners
RIGID = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45]

# A generic adult head in millimetres, in the camera's axes for a frontal face (x right, y down,
# z away from the camera), origin at the nose tip. Only the rigid points are modelled.
MODEL_3D = {
    27: (0.0, -45.0, 20.0), 28: (0.0, -30.0, 13.0), 29: (0.0, -15.0, 6.0), 30: (0.0, 0.0, 0.0),
    31: (-16.0, 8.0, 14.0), 32: (-8.0, 10.0, 10.0), 33: (0.0, 11.0, 9.0), 34: (8.0, 10.0, 10.0),
    35: (16.0, 8.0, 14.0),
    36: (-45.0, -42.0, 40.0), 39: (-15.0, -42.0, 30.0), 42: (15.0, -42.0, 30.0), 45: (45.0, -42.0, 40.0),
}
POSE_POINTS = sorted(MODEL_3D)
MODEL_POINTS = np.array([MODEL_3D[i] for i in POSE_POINTS], dtype=np.float64)


def eye_centers(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)


def interocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres (the normaliser for every relative measure)."""
    right, left = eye_centers(landmarks)
    return float(np.linalg.norm(left - right))


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap (mean of the three vertical inner-lip distances) over the inter-ocular distance."""
    gap = np.linalg.norm(landmarks[[61, 62, 63]] - landmarks[[67, 66, 65]], axis=1).mean()
    return float(gap / max(interocular(landmarks), 1e-6))


def camera_matrix(width: int, height: int) -> np.ndarray:
    """A pinhole camera with a focal length of about a normal lens (f = the longer image side)."""
    focal = float(max(width, height))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in degrees (the inverse of `euler_angles`)."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Rz(roll) Ry(yaw) Rx(pitch).

    Rotations are about the camera's axes (x right, y down, z into the scene) applied to the
    generic head that faces the camera: (0, 0, 0) is a frontal face. Yaw turns about the vertical
    axis (the nose moves sideways), pitch nods about the horizontal axis, roll tilts in the image
    plane (positive: clockwise as seen in the image).
    """
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rotation[2, 0]))))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return yaw, pitch, roll


def project(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Pinhole projection of 3D model points (N, 3) to pixels (N, 2)."""
    cam = points @ rotation.T + translation.reshape(1, 3)
    uv = cam @ camera.T
    return uv[:, :2] / uv[:, 2:3]


def head_pose(landmarks: np.ndarray, camera: np.ndarray,
              guess: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the generic head to the rigid landmarks (solvePnP). Returns ((yaw, pitch, roll), rvec, tvec).

    `guess` (the previous frame's rvec, tvec) makes the fit temporally stable.
    """
    import cv2

    image_points = landmarks[POSE_POINTS].astype(np.float64)
    if guess is not None:
        rvec, tvec = guess[0].astype(np.float64).copy(), guess[1].astype(np.float64).copy()
        ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, None, rvec, tvec,
                                      useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, None, rvec, tvec,
                                          useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    rotation, _ = cv2.Rodrigues(rvec)
    return np.array(euler_angles(rotation)), rvec.reshape(3), tvec.reshape(3)


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama): target ≈ scale * source @ R.T + t. Returns (scale, R, t)."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    var = (s ** 2).sum() / len(source)
    cov = t.T @ s / len(source)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / max(var, 1e-12))
    translation = mu_t - scale * rotation @ mu_s
    return scale, rotation, translation


def apply_similarity(points: np.ndarray, transform: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    scale, rotation, translation = transform
    return scale * points @ rotation.T + translation


def move_box(box: np.ndarray, transform: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """Carry an axis-aligned box (x0, y0, x1, y1) along a similarity: its centre moves, its size scales."""
    scale = transform[0]
    centre = apply_similarity(np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]), transform)[0]
    half = np.array([box[2] - box[0], box[3] - box[1]]) * scale / 2
    return np.array([centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1]])


# points that follow the skull, not the expression: eye corners and the nose (bridge, tip, base)
STABLE = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45]


def stabilize(track: np.ndarray, points: list[int] = STABLE) -> np.ndarray:
    """Map each frame's landmarks (T, 68, 2) onto the first frame's head position: a similarity
    fitted to the stable points removes translation, in-plane rotation and scale (head motion)."""
    reference = track[0][points]
    return np.stack([apply_similarity(f, similarity(f[points], reference)) for f in track])


def local_fit_weights(window: int, degree: int = 2) -> np.ndarray:
    """Weights of a least-squares polynomial fit evaluated at the centre of `window` samples
    (Savitzky-Golay): the smooth part of a trajectory there."""
    half = window // 2
    basis = np.vander(np.arange(-half, half + 1, dtype=np.float64), degree + 1, increasing=True)
    return (basis @ np.linalg.pinv(basis))[half]


def mouth_jitter(track: np.ndarray, window: int = 7, degree: int = 4) -> dict[str, float]:
    """Mouth-landmark jitter of one continuous run of landmarks (T, 68, 2), in pixels.

    1. Head motion is removed: every frame is mapped onto the first by a similarity fitted to the
       stable points (eye corners, nose), so what moves the 20 mouth points afterwards is the face.
    2. `displacement_px`: RMS frame-to-frame displacement of the stabilised mouth points. On a
       still face it is all jitter; on a speaking face it also counts articulation.
    3. `jitter_px`: the part of that displacement which no smooth motion explains. Each stabilised
       mouth coordinate is compared with a local polynomial fit (degree 4 over 7 frames, 0.28 s at
       25 fps): it follows articulation up to about 4 Hz (syllable rate) within 2%, but not
       frame-to-frame landmark noise. The residual of white noise of variance s2 has variance
       s2 * (1 - w0), w0 the fit's centre weight; dividing by that recovers s2, and the
       frame-to-frame displacement that noise alone would produce is reported
       (sqrt(2 * mean over points of (s2_x + s2_y)). For white noise it equals `displacement_px`; for
       smooth articulation it stays near zero. Noise the smoother has already turned into slow
       wander is not counted: on screen it is indistinguishable from motion.
    Both come also as a share of the median inter-ocular distance (`*_iod`).
    """
    track = np.asarray(track, dtype=np.float64)
    if len(track) < max(3, window):
        raise ValueError(f"jitter needs at least {max(3, window)} frames")
    stable = stabilize(track)[:, MOUTH]
    step = np.linalg.norm(np.diff(stable, axis=0), axis=2)
    weights = local_fit_weights(window, degree)
    half = window // 2
    fitted = sum(weights[k] * stable[k:len(stable) - window + 1 + k] for k in range(window))
    residual = stable[half:len(stable) - half] - fitted
    noise_var = (residual ** 2).sum(axis=2).mean() / (1.0 - weights[half])
    iod = float(np.median([interocular(f) for f in track]))
    displacement = float(np.sqrt((step ** 2).mean()))
    jitter = float(np.sqrt(2.0 * noise_var))
    return {"displacement_px": displacement, "jitter_px": jitter, "iod_px": iod,
            "displacement_iod": displacement / iod, "jitter_iod": jitter / iod}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) and b (M, 4), (x0, y0, x1, y1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
