"""EuroSAT ResNet: architectures, shipped weights, the Classifier, training and evaluation."""

from lulc_core.model.classifier import Classifier, load_classifier

__all__ = ["Classifier", "InputError", "load_classifier"]
