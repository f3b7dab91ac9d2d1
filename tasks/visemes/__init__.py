"""The `visemes` stage: dubbed speech -> phoneme timings -> visemes -> continuous mouth curves.

Pure logic lives in small modules (tables, coarticulation, smoothing, curves, align helpers);
models (Kokoro durations, Whisper, dlib) are imported inside the functions that use them.
"""
