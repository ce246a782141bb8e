"""The video path: temporally stable colorization of films and frame sequences.

- :mod:`core.video.io`: reading video files / frame folders, writing them atomically (audio copy).
- :mod:`core.video.flow`: optical flow, reliability masks, scene cuts, warping.
- :mod:`core.video.temporal`: the temporal filter and ``colorize_sequence`` (GIMP animation frames).
- :mod:`core.video.pipeline`: the threaded decode -> colorize -> encode pipeline (``colorize_video``).
- :mod:`core.video.synth`: synthetic test clips with known colour; :mod:`core.video.evaluate`: flicker metrics.
- :mod:`core.video.cli`: ``tinct video`` and ``tinct eval-video``.
"""
