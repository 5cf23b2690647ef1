"""Bridges: trainable input transformations, one module per target modality.

A bridge maps a batch of target samples to a batch of source-model inputs and
owns the input-side trainable parameters (theta). It knows nothing of the
source model beyond its input spec.
"""
