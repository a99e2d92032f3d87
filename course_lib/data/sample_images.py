"""scikit-learn's two sample photographs (china, flower), for convolution demos.

Both are 427x640 RGB JPEGs shipped inside scikit-learn, so the demos run offline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.data.digits import check_float_dtype
from course_lib.validation import check_positive_int

__all__ = ["load_sample_images"]

SAMPLE_IMAGE_NAMES = ("china", "flower")


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (check_positive_int(size[0], "size[0] (height)"),
                check_positive_int(size[1], "size[1] (width)"))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        side = check_positive_int(size, "size")
        return side, side
    raise TypeError(f"size must be None, an int or a (height, width) tuple of ints; got "
                    f"{type(size).__name__} {size!r}")


def load_sample_images(dtype: Any = np.float64, size: Any = None) -> dict[str, Any]:
    """The two sample photographs as one NCHW batch.

    Returns a dict:
        images: (2, 3, H, W) array of `dtype`, RGB values in [0, 1] (uint8 value / 255);
                H, W = 427, 640, or `size` if given.
        names:  ('china', 'flower').

    size: None, an int (square images) or (height, width); the photographs are resized with
    bilinear interpolation (aspect ratio not kept), e.g. size=200 for a fast naive-conv demo.
    For matplotlib's imshow, which wants (H, W, 3), use images[i].transpose(1, 2, 0).
    """
    from PIL import Image
    from sklearn.datasets import load_sample_images as sklearn_load_sample_images

    dtype = check_float_dtype(dtype)
    hw = _check_size(size)
    photos = sklearn_load_sample_images().images          # two (427, 640, 3) uint8 arrays
    if hw is not None:
        # PIL takes (width, height).
        photos = [np.asarray(Image.fromarray(p).resize((hw[1], hw[0]),
                                                       Image.Resampling.BILINEAR))
                  for p in photos]
    images = np.stack(photos).transpose(0, 3, 1, 2)       # (2, H, W, 3) -> (2, 3, H, W)
    images = np.ascontiguousarray(images, dtype=dtype) / dtype.type(255)
    return {"images": images, "names": SAMPLE_IMAGE_NAMES}
