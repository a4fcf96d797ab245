"""mnist_net: the assignment's 14,120-parameter MNIST CNN, its training, evaluation and demo helpers."""
