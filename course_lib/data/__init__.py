"""Data: embedded digits and sample photographs, CIFAR-10 batches, preprocessing, augmentation."""
# ruff: noqa: F403
from course_lib.data import augmentation, cifar10, digits, preprocessing, sample_images
from course_lib.data.augmentation import *
from course_lib.data.cifar10 import *
from course_lib.data.digits import *
from course_lib.data.preprocessing import *
from course_lib.data.sample_images import *

__all__ = [*digits.__all__, *sample_images.__all__, *cifar10.__all__, *preprocessing.__all__,
           *augmentation.__all__]
