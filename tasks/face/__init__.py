"""face: every face in every frame: 68 landmarks, head pose, persistent identities, mouth visibility,
and which face track voices which speaker.

Pure logic lives in small modules (geometry, tracking, smoothing, visibility, speaking), the models
behind `backends.FaceBackend` (the `_target_` of `conf/face/*.yaml`), the frame loop in `pipeline`,
pictures in `render`, the artifact formats in `schema`. Importing this package is cheap.
"""
