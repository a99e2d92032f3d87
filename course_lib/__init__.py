"""course_lib: the course's layers, losses, optimizers, models, Solver, data and plots.

Everything public is re-exported here, so notebooks write `from course_lib import conv_forward`.
Names and signatures follow the course contract (CS231n-style): a forward returns
`(out, cache)`, its backward takes `(dout, cache)`; images are NCHW.
"""
# ruff: noqa: F401, F403
from course_lib.classifiers import *
from course_lib.data import *
from course_lib.gradient_check import *
from course_lib.init import *
from course_lib.layers.activations import *
from course_lib.layers.affine import *
from course_lib.layers.composite import *
from course_lib.layers.conv import *
from course_lib.layers.dropout import *
from course_lib.layers.normalization import *
from course_lib.layers.pooling import *
from course_lib.losses import *
from course_lib.models import *
from course_lib.optim import *
from course_lib.plotting import *
from course_lib.schedules import *
from course_lib.solver import *

__version__ = "0.1.0"
