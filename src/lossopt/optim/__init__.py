"""lossopt.optim: gradient descent, Momentum, AdaGrad, RMSProp and Adam, as
drop-ins for torch.optim."""

from lossopt.optim.adagrad import Adagrad
from lossopt.optim.adam import Adam, AdamW
from lossopt.optim.optimizer import Optimizer
from lossopt.optim.rmsprop import RMSprop
from lossopt.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop"]
