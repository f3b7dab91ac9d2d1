"""The face analysis of one video: detect, track, refine, identify, smooth, pose, visibility, speaker.

`analyze` is the whole stage minus file writing; it takes frames from any iterator, so tests feed
it synthetic or derived footage directly.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from tasks.face import geometry as geo
from tasks.face import visibility as vis
from tasks.face.smoothing import smooth_landmarks
from tasks.face.tracking import CutDetector, Fragment, frame_histogram, match_detections, merge_identities, spans

log = logging.getLogger("dub")


@dataclass
class FaceOptions:
    min_face: float = 0.15           # smallest face to find, as a share of the frame's shorter side
    detect_max_scale: float = 1.5    # detection frame scale limits: it is scaled so that a face of
    detect_min_scale: float = 0.25   # `min_face` becomes the detector's 80 px window
    detect_every: int = 3            # full-frame detection every N frames (and at every cut)
    min_iou: float = 0.3             # detection-to-track overlap for a match
    verify_threshold: float = -0.8   # detector threshold adjustment when re-checking a lost track locally
    max_unconfirmed_s: float = 0.8   # a track not seen by the detector for this long ends
    embed_every: int = 10            # frames between identity embeddings of one track
    embed_min_frontal: float = 0.4   # turned faces (detector's frontality below this) get no embedding
    split_factor: float = 1.4        # a track whose embedding drifts this far past the threshold is split
    min_detections: int = 2          # fragments confirmed fewer times are false detections
    min_track_s: float = 1.0         # identities on screen for less time get no track (id -1)
    min_iod_px: float = 12.0         # smaller faces are ignored
    new_track_min_size: float = 1.0  # a new track needs a box at least this share of `min_face` wide
    max_scale_step: float = 1.03     # largest change of a tracked box's size from one frame to the next
    flow_side: int = 360             # optical flow between detections runs on frames this tall (shorter side)
    flow_rigid_share: float = 0.65   # flow follows corners in this upper share of the face box
    detection_weight: float = 0.5    # a matched detection moves its track's box this far towards it
    cut_threshold: float = 0.35
    cut_ratio: float = 3.0
    smoothing: dict = field(default_factory=lambda: {"min_cutoff": 1.5, "beta": 3.0, "mouth_min_cutoff": 3.0, "mouth_beta": 8.0})
    visibility: dict = field(default_factory=dict)
    speaking: dict = field(default_factory=lambda: {"max_lag": 3, "min_coverage": 0.3, "min_score": 0.2,
                                                               "sole_face_min_coverage": 0.8, "sole_face_min_motion": 0.02})
    thumbnails: int = 8              # face crops kept per fragment for the contact sheet


@dataclass
class _Active:
    fragment: Fragment
    landmarks: np.ndarray
    box: np.ndarray
    confirmed: int
    frontal: float = 1.0              # from the last detection, where the detector measures it
    last_embed: int = -(10 ** 9)
    rows: list[int] = field(default_factory=list)


@dataclass
class FaceAnalysis:
    """Everything the stage learned, as arrays over detections (rows) and frames."""

    width: int
    height: int
    fps: float
    frames: int
    times: np.ndarray                   # (F,) seconds
    cuts: list[int]
    frame: np.ndarray                   # (N,) int32
    fragment: np.ndarray                # (N,) int32
    track: np.ndarray                   # (N,) int32, -1: not a kept identity
    box: np.ndarray                     # (N, 4) float32
    landmarks: np.ndarray               # (N, 68, 2) float32, smoothed
    landmarks_raw: np.ndarray           # (N, 68, 2) float32
    detected: np.ndarray                # (N,) bool: the detector confirmed this face in this frame
    pose: np.ndarray                    # (N, 3) yaw, pitch, roll degrees
    rvec: np.ndarray                    # (N, 3)
    tvec: np.ndarray                    # (N, 3)
    visibility: np.ndarray              # (N,) 0..1
    occluder: np.ndarray                # (N,) int8 codes (visibility.OCCLUDERS)
    mouth_box: np.ndarray               # (N, 4) int32
    mouth_mask: np.ndarray              # (N, 32, 48) uint8
    mouth_open: np.ndarray              # (N,) inner-lip gap / inter-ocular distance
    embeddings: dict[int, np.ndarray]   # identity -> mean embedding
    thumbnails: dict[int, list[tuple[int, np.ndarray]]]  # identity -> [(frame, crop)]
    speakers: dict[str, int | None] = field(default_factory=dict)
    speaker_scores: dict[str, dict[int, float]] = field(default_factory=dict)
    speaker_basis: dict[str, str] = field(default_factory=dict)  # speaker -> why that face (see attach_speakers)
    segments: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    backend: str = ""

    @property
    def analysis_fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def track_ids(self) -> list[int]:
        return sorted(int(t) for t in np.unique(self.track) if t >= 0)


def read_frames(path: str) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, BGR frame) for every frame of a video file."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, frame
    finally:
        capture.release()


def detection_scale(width: int, height: int, options: FaceOptions, window: float = 80.0) -> float:
    """The scale of the frame the detector sees: a face of `min_face` fills the detector's window."""
    scale = window / max(options.min_face * min(width, height), 1.0)
    return float(np.clip(scale, options.detect_min_scale, options.detect_max_scale))


def _scaled(frame: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if abs(scale - 1.0) < 0.02:
        return frame
    h, w = frame.shape[:2]
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=method)


class _Tracker:
    def __init__(self, backend, options: FaceOptions, width: int, height: int):
        self.backend, self.o, self.width, self.height = backend, options, width, height
        self.active: list[_Active] = []
        self.fragments: list[Fragment] = []
        self.rows: dict[str, list] = {k: [] for k in ("frame", "fragment", "box", "landmarks", "detected", "visibility",
                                                      "occluder", "mouth_box", "mouth_mask", "lip_contrast")}
        self.dropped: set[int] = set()
        self.thumbs: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.cut_detector = CutDetector(options.cut_threshold, options.cut_ratio)
        self.cuts: list[int] = []
        self.previous_small: np.ndarray | None = None

    # -- lifecycle
    def _end(self, track: _Active, frame: int, drop_unconfirmed: bool) -> None:
        if drop_unconfirmed:
            keep_until = track.confirmed + self.o.detect_every
            for row in track.rows:
                if self.rows["frame"][row] > keep_until:
                    self.dropped.add(row)
            track.fragment.frames = [f for f in track.fragment.frames if f <= keep_until]
        self.active.remove(track)

    def _start(self, frame: int, box: np.ndarray, landmarks: np.ndarray) -> _Active:
        fragment = Fragment(len(self.fragments))
        self.fragments.append(fragment)
        track = _Active(fragment, landmarks, box, frame)
        self.active.append(track)
        return track

    def _flow_scale(self) -> float:
        return min(1.0, self.o.flow_side / max(min(self.width, self.height), 1))

    def _carry(self, track: _Active, previous_small: np.ndarray, small: np.ndarray) -> np.ndarray:
        """The track's box moved from the previous frame to this one by optical flow.

        Corners in the upper part of the box (eyes, brows, nose: no speech motion) are followed by
        pyramidal Lucas-Kanade, checked forwards-backwards, and a similarity is fitted to them
        robustly; it works whatever the head pose (the 68-point model's own points do not: on a
        turned face they contract and drift). The box size changes by at most `max_scale_step`
        per frame. Too few good points: the box stays where it was until the next detection.
        """
        import cv2

        scale = self._flow_scale()
        x0, y0, x1, y1 = track.box * scale
        h, w = small.shape[:2]
        top = y0 + self.o.flow_rigid_share * (y1 - y0)
        ix0, iy0, ix1, iy1 = int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(top, h))
        if ix1 - ix0 < 8 or iy1 - iy0 < 8:
            return track.box
        mask = np.zeros_like(previous_small)
        mask[iy0:iy1, ix0:ix1] = 255
        points = cv2.goodFeaturesToTrack(previous_small, 60, 0.01, 3, mask=mask)
        if points is None or len(points) < 6:
            return track.box
        window = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        ahead, ok, _ = cv2.calcOpticalFlowPyrLK(previous_small, small, points, None, **window)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(small, previous_small, ahead, None, **window)
        good = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (np.linalg.norm(back - points, axis=2).ravel() < 1.0)
        if good.sum() < 6:
            return track.box
        matrix, _ = cv2.estimateAffinePartial2D(points[good], ahead[good], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if matrix is None:
            return track.box
        factor = float(np.clip(np.sqrt(abs(np.linalg.det(matrix[:, :2]))), 1 / self.o.max_scale_step, self.o.max_scale_step))
        centre = matrix @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0]) / scale
        half = (track.box[2:] - track.box[:2]) * factor / 2
        return np.concatenate([centre - half, centre + half])

    def _verify(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Re-run the detector around a track's box with a lower threshold; the box found or None."""
        import cv2

        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.0 * max(w, h)
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(self.width, cx + side / 2)), int(min(self.height, cy + side / 2))
        if x1 - x0 < 20 or y1 - y0 < 20:
            return None
        crop = frame[y0:y1, x0:x1]
        scale = 240.0 / max(crop.shape)
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        threshold = getattr(self.backend, "detect_threshold", 0.0)
        try:
            self.backend.detect_threshold = threshold + self.o.verify_threshold
            found = self.backend.detect(crop)
        finally:
            self.backend.detect_threshold = threshold
        if not len(found):
            return None
        boxes = found[:, :4] / scale + [x0, y0, x0, y0]
        pairs = match_detections(box[None], boxes, self.o.min_iou)
        return boxes[pairs[0][1]] if pairs else None

    # -- one frame
    def step(self, index: int, frame: np.ndarray) -> None:
        import cv2

        o = self.o
        tiny = cv2.resize(frame, (160, max(1, round(160 * frame.shape[0] / frame.shape[1]))), interpolation=cv2.INTER_AREA)
        cut, _ = self.cut_detector.update(frame_histogram(tiny))
        if cut:
            self.cuts.append(index)
            for track in list(self.active):
                self._end(track, index, drop_unconfirmed=False)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = _scaled(gray, self._flow_scale())
        confirmed_now: set[int] = set()
        # 1. carry every track to this frame by refitting its landmarks
        for track in list(self.active):
            track.box = self._carry(track, self.previous_small, small)
            track.landmarks = self.backend.landmarks(gray, frame, track.box)
            if geo.interocular(track.landmarks) < o.min_iod_px or not self._inside(track.box):
                self._end(track, index, drop_unconfirmed=True)
        # 2. detect, match, re-anchor; start tracks for new faces; re-check the unmatched locally
        if cut or index % o.detect_every == 0:
            scale = detection_scale(self.width, self.height, o, getattr(self.backend, "detect_window", 80.0))
            found = self.backend.detect(_scaled(frame, scale))
            boxes = found[:, :4] / scale if len(found) else np.zeros((0, 4))
            frontal = found[:, 5] if found.shape[1] > 5 else np.ones(len(found))
            pairs = match_detections(np.array([t.box for t in self.active]).reshape(-1, 4), boxes, o.min_iou)
            matched_t = {t for t, _ in pairs}
            matched_d = {d for _, d in pairs}
            for t, d in pairs:
                # the detector's box is noisier than the flow from frame to frame: correct towards it
                track = self.active[t]
                box = o.detection_weight * boxes[d] + (1 - o.detection_weight) * track.box
                self._anchor(track, gray, frame, box, index)
                track.frontal = float(frontal[d])
                confirmed_now.add(id(self.active[t]))
            for track in [t for i, t in enumerate(self.active) if i not in matched_t]:
                box = self._verify(frame, track.box)
                if box is not None:
                    self._anchor(track, gray, frame, box, index)
                    confirmed_now.add(id(track))
            start_score = getattr(self.backend, "new_track_score", None)
            min_side = o.min_face * min(self.width, self.height) * o.new_track_min_size
            for d in range(len(boxes)):
                if d in matched_d:
                    continue
                # weak or small detections only confirm existing tracks: hands and mics under a
                # face score high in some frames, but not high enough, nor are they face-sized
                if start_score is not None and found[d, 4] < start_score:
                    continue
                if boxes[d, 2] - boxes[d, 0] < min_side:
                    continue
                current = np.array([t.box for t in self.active]).reshape(-1, 4)
                if len(current) and geo.box_iou(boxes[d][None], current).max() > o.min_iou:
                    continue
                landmarks = self.backend.landmarks(gray, frame, boxes[d])
                if geo.interocular(landmarks) < o.min_iod_px:
                    continue
                track = self._start(index, boxes[d], landmarks)
                track.box, track.frontal = boxes[d].copy(), float(frontal[d])
                confirmed_now.add(id(track))
        # 3. end tracks unseen for too long, and duplicates (two tracks on one face)
        fps_frames = o.max_unconfirmed_s * self.fps
        for track in list(self.active):
            if index - track.confirmed > fps_frames:
                self._end(track, index, drop_unconfirmed=True)
        for a in list(self.active):
            for b in list(self.active):
                if a is not b and a in self.active and b in self.active and a.fragment.id < b.fragment.id \
                        and geo.box_iou(a.box[None], b.box[None])[0, 0] > 0.5:
                    self._end(b, index, drop_unconfirmed=False)
        self.previous_small = small
        # 4. record rows, embeddings, visibility
        rgb = None
        boxes_now = [t.box for t in self.active]
        for k, track in enumerate(list(self.active)):  # _embed may split a track, changing self.active
            others = np.array([b for j, b in enumerate(boxes_now) if j != k and self._in_front(b, track.box)]).reshape(-1, 4)
            score, mask, mbox, code, lip = vis.mouth_visibility(frame, track.landmarks, others, **o.visibility)
            row = len(self.rows["frame"])
            for key, value in (("frame", index), ("fragment", track.fragment.id), ("box", track.box.copy()),
                               ("landmarks", track.landmarks.copy()), ("detected", id(track) in confirmed_now),
                               ("visibility", score), ("occluder", code), ("mouth_box", mbox), ("mouth_mask", mask),
                               ("lip_contrast", lip)):
                self.rows[key].append(value)
            track.rows.append(row)
            track.fragment.frames.append(index)
            if id(track) in confirmed_now:
                track.fragment.detections += 1
                if index - track.last_embed >= o.embed_every:
                    rgb = rgb if rgb is not None else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    self._embed(track, rgb, frame, index)

    def _embed(self, track: _Active, rgb: np.ndarray, frame: np.ndarray, index: int) -> None:
        from tasks.face.tracking import embedding_distance

        track.last_embed = index
        fragment = track.fragment
        if track.frontal < self.o.embed_min_frontal:
            # the identity embedding of a turned face says little about who it is (profiles of
            # different people come out close): such frames neither split nor merge identities
            self._thumbnail(fragment.id, index, frame, track.box)
            return
        vector = self.backend.embed(rgb, track.landmarks)
        threshold = getattr(self.backend, "embedding_threshold", 0.55)
        if len(fragment.embeddings) >= 3 and embedding_distance(fragment.embeddings, [vector]) > self.o.split_factor * threshold:
            # the track slid onto someone else: close it here, continue as a new fragment
            fragment.frames.pop()
            track.rows.pop()
            self.active.remove(track)
            new = self._start(index, track.box, track.landmarks)
            new.box = track.box
            new.rows.append(len(self.rows["frame"]) - 1)
            new.fragment.frames.append(index)
            new.fragment.detections += 1
            self.rows["fragment"][-1] = new.fragment.id  # rows are appended in order: this one is the last
            track, fragment = new, new.fragment
            track.last_embed = index
        fragment.embeddings.append(vector)
        self._thumbnail(fragment.id, index, frame, track.box)

    def _thumbnail(self, fragment: int, index: int, frame: np.ndarray, box: np.ndarray) -> None:
        thumbs = self.thumbs.setdefault(fragment, [])
        if len(thumbs) < self.o.thumbnails:
            thumbs.append((index, _crop(frame, box)))

    def _anchor(self, track: _Active, gray, frame, box: np.ndarray, index: int) -> None:
        track.landmarks = self.backend.landmarks(gray, frame, box)
        track.box = box.copy()
        track.confirmed = index

    def _inside(self, box: np.ndarray) -> bool:
        w, h = box[2] - box[0], box[3] - box[1]
        ix = max(0.0, min(box[2], self.width) - max(box[0], 0))
        iy = max(0.0, min(box[3], self.height) - max(box[1], 0))
        return w > 0 and h > 0 and ix * iy >= 0.4 * w * h

    @staticmethod
    def _in_front(other: np.ndarray, box: np.ndarray) -> bool:
        """Another face occludes this one only if it is larger (nearer the camera)."""
        return (other[2] - other[0]) > 1.15 * (box[2] - box[0])


def _crop(frame: np.ndarray, box: np.ndarray, size: int = 112) -> np.ndarray:
    import cv2

    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy, side = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 1.4 * max(w, h)
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(frame.shape[1], cx + side / 2)), int(min(frame.shape[0], cy + side / 2))
    crop = frame[y0:y1, x0:x1]
    if crop.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def analyze(frames: Iterable[tuple[float, np.ndarray]], backend, options: FaceOptions, fps: float,
            total: int | None = None, segments: list[tuple[int, float, float, str]] | None = None,
            audio: tuple[np.ndarray, int] | None = None, progress: bool | str = True,
            stereo: tuple[np.ndarray, int] | None = None) -> FaceAnalysis:
    """Run the face analysis over `frames` ((time, BGR) pairs); `segments` and `audio` enable speakers
    (`stereo`: the soundtrack's channels, see `attach_speakers`).
    `progress`: a bar over the frames (a string: the bar's label, else "face"), or none."""
    from tqdm import tqdm

    started = time.perf_counter()
    tracker = None
    times: list[float] = []
    label = progress if isinstance(progress, str) else "face"
    with tqdm(total=total, unit="frame", desc=label, disable=not progress) as bar:
        for index, (stamp, frame) in enumerate(frames):
            if tracker is None:
                tracker = _Tracker(backend, options, frame.shape[1], frame.shape[0])
                tracker.fps = fps
            times.append(stamp if stamp > 0 or index == 0 else index / fps)
            tracker.step(index, frame)
            bar.update(1)
            if index and index % 100 == 0:
                log.info("face: %d frames, %.1f fps", index, index / (time.perf_counter() - started))
    if tracker is None:
        raise ValueError("no frames")
    elapsed = time.perf_counter() - started
    result = _finish(tracker, options, fps, np.asarray(times), backend)
    result.seconds = elapsed
    if segments and audio is not None:
        attach_speakers(result, segments, audio, options, stereo)
    return result


def _finish(tracker: _Tracker, o: FaceOptions, fps: float, times: np.ndarray, backend) -> FaceAnalysis:
    rows = tracker.rows
    n = len(rows["frame"])
    keep = np.array([i not in tracker.dropped for i in range(n)], dtype=bool)
    fragments = {f.id: f for f in tracker.fragments}
    frag_of_row = np.array(rows["fragment"], dtype=np.int32).reshape(-1)
    good = {fid for fid, f in fragments.items() if f.detections >= o.min_detections and f.frames}
    keep &= np.isin(frag_of_row, list(good)) if n else keep
    threshold = getattr(backend, "embedding_threshold", 0.55)
    for f in fragments.values():  # frames as the rows that survived
        f.frames = sorted(int(rows["frame"][i]) for i in range(n) if keep[i] and rows["fragment"][i] == f.id)
    survivors = [fragments[fid] for fid in sorted(good) if fragments[fid].frames]
    identity = merge_identities(survivors, threshold)
    frame_arr = np.array(rows["frame"], dtype=np.int32).reshape(-1)
    ident = np.array([identity.get(int(f), -1) for f in frag_of_row], dtype=np.int32)
    ident[~keep] = -1
    # identities on screen too briefly get no track; the rest are renumbered by first appearance
    min_frames = o.min_track_s * fps
    counts = {i: len(set(frame_arr[ident == i])) for i in set(ident.tolist()) if i >= 0}
    kept_ids = sorted((i for i, c in counts.items() if c >= min_frames), key=lambda i: frame_arr[ident == i].min())
    renumber = {old: new for new, old in enumerate(kept_ids)}
    track = np.array([renumber.get(int(i), -1) for i in ident], dtype=np.int32)
    sel = np.flatnonzero(keep)
    raw = np.array(rows["landmarks"], dtype=np.float64).reshape(-1, 68, 2)
    smooth = raw.copy()
    for fid in good:  # fragments are continuous runs: smooth each one
        idx = sel[frag_of_row[sel] == fid]
        idx = idx[np.argsort(frame_arr[idx])]
        if len(idx) >= 3:
            smooth[idx] = smooth_landmarks(raw[idx], fps, **o.smoothing)
    pose = np.zeros((n, 3))
    rvec = np.zeros((n, 3))
    tvec = np.zeros((n, 3))
    camera = geo.camera_matrix(tracker.width, tracker.height)
    for fid in good:
        idx = sel[frag_of_row[sel] == fid]
        guess = None
        for i in idx[np.argsort(frame_arr[idx])]:
            pose[i], rvec[i], tvec[i] = geo.head_pose(smooth[i], camera, guess)
            guess = (rvec[i], tvec[i])
    visibility = np.array(rows["visibility"], dtype=np.float32).reshape(-1)
    occluder = np.array(rows["occluder"], dtype=np.int8).reshape(-1)
    masks = np.array(rows["mouth_mask"], dtype=np.uint8).reshape(-1, *vis.MASK_SHAPE)
    mouth_boxes = np.array(rows["mouth_box"], dtype=np.int32).reshape(-1, 4)
    lip = np.array(rows["lip_contrast"], dtype=np.float64).reshape(-1, 2)  # (lip redness, mouth-line darkness)
    for t in set(track.tolist()) - {-1}:
        idx = sel[track[sel] == t]
        own_masks, own_vis, own_codes = masks[idx], visibility[idx], occluder[idx]
        vis.discount_own_features(own_masks, own_vis, own_codes)
        masks[idx], visibility[idx], occluder[idx] = own_masks, own_vis, own_codes
        hidden = vis.hidden_lips(lip[idx, 0], lip[idx, 1])
        for i in idx[hidden]:
            if occluder[i] == vis.NONE:
                occluder[i] = vis.SKIN
                visibility[i] = min(visibility[i], 0.3)
                masks[i] = _lip_mask(raw[i], mouth_boxes[i])
    mouth_open = np.array([geo.mouth_opening(l) for l in smooth], dtype=np.float32).reshape(-1)
    embeddings: dict[int, np.ndarray] = {}
    thumbnails: dict[int, list] = {}
    for f in survivors:
        t = renumber.get(identity.get(f.id, -1), -1)
        if t < 0:
            continue
        embeddings.setdefault(t, [])
        embeddings[t] += f.embeddings  # type: ignore[operator]
        thumbnails.setdefault(t, []).extend(tracker.thumbs.get(f.id, []))
    embeddings = {t: np.mean(v, axis=0) for t, v in embeddings.items() if len(v)}
    k = sel
    return FaceAnalysis(
        width=tracker.width, height=tracker.height, fps=fps, frames=len(times), times=times, cuts=tracker.cuts,
        frame=frame_arr[k], fragment=frag_of_row[k], track=track[k],
        box=np.array(rows["box"], dtype=np.float32).reshape(-1, 4)[k], landmarks=smooth[k].astype(np.float32),
        landmarks_raw=raw[k].astype(np.float32), detected=np.array(rows["detected"], dtype=bool).reshape(-1)[k],
        pose=pose[k].astype(np.float32), rvec=rvec[k].astype(np.float32), tvec=tvec[k].astype(np.float32),
        visibility=visibility[k], occluder=occluder[k], mouth_box=mouth_boxes[k], mouth_mask=masks[k],
        mouth_open=mouth_open[k], embeddings=embeddings,
        thumbnails={t: sorted(v, key=lambda x: x[0]) for t, v in thumbnails.items()},
        backend=getattr(backend, "name", type(backend).__name__),
    )


def _lip_mask(landmarks: np.ndarray, box: np.ndarray) -> np.ndarray:
    import cv2

    rows, cols = vis.MASK_SHAPE
    x0, y0, x1, y1 = box
    local = (landmarks[48:60] - [x0, y0]) * [cols / max(x1 - x0, 1), rows / max(y1 - y0, 1)]
    mask = np.zeros(vis.MASK_SHAPE, np.uint8)
    cv2.fillPoly(mask, [np.round(local).astype(np.int32)], 255)
    return mask


def track_openings(result: FaceAnalysis) -> dict[int, np.ndarray]:
    """Per kept track, its mouth opening in every frame (NaN where it is not on screen)."""
    out = {}
    for t in result.track_ids():
        series = np.full(result.frames, np.nan)
        sel = result.track == t
        series[result.frame[sel]] = result.mouth_open[sel]
        out[t] = series
    return out


def track_heads(result: FaceAnalysis) -> dict[int, np.ndarray]:
    """Per track, its box centre in every frame in box widths (the track's median), NaN where absent."""
    out = {}
    for t in result.track_ids():
        sel = result.track == t
        boxes = result.box[sel].astype(np.float64)
        series = np.full((result.frames, 2), np.nan)
        series[result.frame[sel]] = (boxes[:, :2] + boxes[:, 2:]) / 2 / max(float(np.median(boxes[:, 2] - boxes[:, 0])), 1e-6)
        out[t] = series
    return out


def attach_speakers(result: FaceAnalysis, segments: list[tuple[int, float, float, str]],
                    audio: tuple[np.ndarray, int], options: FaceOptions,
                    stereo: tuple[np.ndarray, int] | None = None) -> None:
    """Each speaker's face (`result.speakers`), the evidence for it (`speaker_scores`, `speaker_basis`)
    and each segment's face (`result.segments`). `audio`: the speech, mono; `stereo`: the soundtrack's
    two channels where it has them (where the picture is still, who sits where in the stereo image)."""
    from tasks.face.speaking import (associate, placed_by_layout, score_segments, sole_moving_faces, speaker_pans,
                                     speech_envelope, still_faces)

    samples, rate = audio
    envelope = speech_envelope(samples, rate, result.times + 0.5 / result.fps)
    opts = dict(options.speaking)
    min_score = opts.pop("min_score", 0.2)
    sole = opts.pop("sole_face_min_coverage", 0.8)
    min_motion = opts.pop("sole_face_min_motion", 0.02)
    still_layout = opts.pop("still_layout", True)
    openings = track_openings(result)
    scores = score_segments(segments, openings, envelope, result.fps, **opts)
    durations = {seg: end - start for seg, start, end, _ in segments}
    speaking: dict[str, np.ndarray] = {}
    for seg, start, end, speaker in segments:
        mask = speaking.setdefault(speaker, np.zeros(result.frames, bool))
        mask[(result.times >= start) & (result.times <= end)] = True
    # a speaker with exactly one face whose mouth moves (opening std > `sole_face_min_motion` x
    # inter-ocular distance) on screen through (nearly) all of their speech is that face, whatever
    # still faces are beside it: the envelope correlation is weak on some real footage (head turns:
    # 0.04 over 31 s of head_turns_woman four times over, whose voice lost her face to another's 1 s
    # glimpse at 0.86), and a frozen face's jitter correlates with speech by chance (two clips side by
    # side, each held still while the other speaks: 0.31-0.34). Where two speakers claim one face,
    # the sync evidence decides (`associate`)
    claims = sole_moving_faces(openings, speaking, sole, min_motion) if sole else {}
    speakers, table, per_segment = associate(scores, durations, min_score, claims)
    basis = {who: ("sole moving face" if claims.get(who) == track else "sync") for who, track in speakers.items()
             if track is not None}
    if still_layout and still_faces(openings, speaking, min_motion, track_heads(result)):
        # a photo: no mouth moves, so sync says nothing; each voice gets its own face by layout
        first = sorted(speaking, key=lambda who: min(start for _, start, _, s in segments if s == who))
        face_x = {t: float(np.median(result.box[result.track == t][:, [0, 2]].mean(axis=1))) for t in result.track_ids()}
        pans = speaker_pans(*stereo, segments) if stereo is not None and np.shape(stereo[0])[1:] >= (2,) else None
        speakers, how = placed_by_layout(first, face_x, pans)
        basis = {who: f"still picture: {how}" for who, track in speakers.items() if track is not None}
        per_segment = {seg: speakers.get(who) for seg, _, _, who in segments}
        log.info("no face's mouth moves through the speech (a still picture): speakers placed %s, %s "
                 "(face.speaker_faces chooses)", {"stereo": "on faces by the stereo image, leftmost first",
                                                  "order": "on faces left to right in order of first speech",
                                                  "one face": "all on the one face"}[how], speakers)
    for seg, start, end, who in segments:
        if per_segment.get(seg) is None and speakers.get(who) is not None and claims.get(who) == speakers[who]:
            per_segment[seg] = speakers[who]
    result.speakers, result.speaker_scores, result.speaker_basis = speakers, table, basis
    by_segment: dict[int, list] = {}
    for s in scores:
        by_segment.setdefault(s.segment, []).append(s)
    result.segments = [
        {"id": seg, "start": start, "end": end, "speaker": speaker, "track": per_segment.get(seg),
         "scores": {int(s.track): round(s.correlation, 4) for s in by_segment.get(seg, [])}}
        for seg, start, end, speaker in segments]


def choose_faces(result: FaceAnalysis, chosen: dict[str, int | None]) -> None:
    """The user's speaker -> face choices (`face.speaker_faces`) over the association, segments too.
    ValueError (one line) for a speaker or face track that is not in this video."""
    from tasks.face.speaking import with_chosen_faces

    if not chosen:
        return
    result.speakers = with_chosen_faces(result.speakers, chosen, result.track_ids())
    log.info("faces chosen by hand (face.speaker_faces): %s", chosen)
    # a photo stays known as one (the lip-sync figures of a still source are no reference)
    label = "chosen, still picture" if any(how.startswith("still picture") for how in result.speaker_basis.values()) else "chosen"
    result.speaker_basis = {**{who: how for who, how in result.speaker_basis.items() if result.speakers.get(who) is not None},
                            **{who: label for who, track in chosen.items() if track is not None}}
    for segment in result.segments:
        segment["track"] = result.speakers.get(segment["speaker"])


def continuity(result: FaceAnalysis, track: int) -> dict[str, float]:
    """How continuous a track is: its spans, and the share of frames from its first to last it covers."""
    frames = np.unique(result.frame[result.track == track])
    if not len(frames):
        return {"spans": 0, "coverage_of_clip": 0.0, "coverage_of_extent": 0.0}
    runs = spans(frames)
    return {"spans": len(runs), "coverage_of_clip": len(frames) / result.frames,
            "coverage_of_extent": len(frames) / (frames[-1] - frames[0] + 1)}
