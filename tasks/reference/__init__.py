"""reference: the source's own lip sync, measured once per video.

What a real person achieves on this footage is the reference every dub is judged against (issue 6:
a dub's bilabial closure and aperture contrast should reach 80% of the source's). It is the same
measure as the evaluate stage's (`tasks.evaluate.lipsync`, its settings from conf/evaluate), run on
the source video with its own audio and the asr stage's words, once per video instead of once per
language: the face analysis is most of the measure's time (about 8 s for 10 s of 720p video).
"""
