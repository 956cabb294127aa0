"""Datasets with Keras' loaders' return values: `tidu.datasets.mnist.load_data()`."""
from tidu.datasets import mnist
