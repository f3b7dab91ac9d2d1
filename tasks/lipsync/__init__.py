"""The `lipsync` stage: a new mouth for every speaking face, blended into the source frames.

Pure logic (features, Viterbi selection, bank index, colour transfer, masks, metrics) lives in
`core`; the mesh warp in `warp`; the default CPU generator (a per-speaker bank of the speaker's own
mouth appearances) in `exemplar`; the report artifact in `schema`; frame I/O and compositing in
`__main__`. Heavy imports (cv2) happen inside functions, so importing the stage is cheap.
"""
