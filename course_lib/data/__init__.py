"""Data: embedded digits, MNIST and sample photographs, CIFAR-10 batches and downloader,
load_dataset (one call for every data set), preprocessing, augmentation.

`python -m course_lib.data download cifar10 [--dir DIR]` gets CIFAR-10 (see __main__.py).
"""
# ruff: noqa: F403
from course_lib.data import (
    augmentation,
    cifar10,
    datasets,
    digits,
    mnist,
    preprocessing,
    sample_images,
)
from course_lib.data.augmentation import *
from course_lib.data.cifar10 import *
from course_lib.data.datasets import *
from course_lib.data.digits import *
from course_lib.data.mnist import *
from course_lib.data.preprocessing import *
from course_lib.data.sample_images import *

__all__ = [*digits.__all__, *mnist.__all__, *sample_images.__all__, *cifar10.__all__,
           *datasets.__all__, *preprocessing.__all__, *augmentation.__all__]
