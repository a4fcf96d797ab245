"""mnist_net: the assignment's 14,120-parameter MNIST CNN, its training, evaluation and demo helpers."""
from .checkpoint import DEFAULT_WEIGHTS, WeightsError, load_model, save_weights
from .model import ModelConfig, Net, count_parameters, summary_text
