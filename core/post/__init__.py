"""Post-processing of the colour prediction against blotches and halos.

Three optional, composable steps at the network's output resolution (see ``apply_post``):
``crf`` (mean-field CRF over the bin distribution, ``crf.py``), ``segments`` (confidence-weighted
pooling inside regions of L, ``segments.py``), ``tv`` (total-variation smoothing of ab, ``tv.py``);
plus ``blend_with_mask`` (``mask.py``) which the pipeline applies at full resolution.
"""

from .crf import crf_refine_log_probs
from .mask import blend_with_mask
from .segments import homogenize_ab, homogenize_log_probs, pool_in_segments, segment_L
from .steps import POST_STEPS, apply_post, parse_post_steps
from .tv import tv_smooth_ab

__all__ = [
    "POST_STEPS",
    "apply_post",
    "blend_with_mask",
    "crf_refine_log_probs",
    "homogenize_ab",
    "homogenize_log_probs",
    "parse_post_steps",
    "pool_in_segments",
    "segment_L",
    "tv_smooth_ab",
]
