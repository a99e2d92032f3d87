"""Models with `params` and `loss(X, y=None)`: scores when y is None, else (loss, grads)."""
from course_lib.models.cnn import ConvNet, ThreeLayerConvNet
from course_lib.models.fc_net import FullyConnectedNet
from course_lib.models.two_layer_net import TwoLayerNet

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "ConvNet"]
