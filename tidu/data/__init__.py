"""Preparing data for training: labels, standardization, batches, curriculum, augmentation."""
from tidu.data.augmentation import ImageAugmenter
from tidu.data.batching import Batches, batches
from tidu.data.curriculum import curriculum_order, pacing_fraction
from tidu.data.preprocessing import Normalizer
from tidu.utils import normalize, to_categorical

__all__ = ["Batches", "ImageAugmenter", "Normalizer", "batches", "curriculum_order",
           "normalize", "pacing_fraction", "to_categorical"]
