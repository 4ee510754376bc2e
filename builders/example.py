"""An example of your own model for the L2 lab: a small convnet with a separable convolution.

Use it with `model.builder: builders/example.py:small_convnet` in params.yaml. A builder
takes the shape of one example (e.g. (8, 8, 1)) and the number of classes, and returns an
unregularized functional or Sequential `keras.Model` ending in a softmax. The lab attaches
each sweep entry's L2 rates itself, by layer name, so name the layers you want to address,
for example with a glob mapping in a sweep entry: `l2: {"conv_*": 1e-4, "dense_*": 1e-3}`.
"""

import keras


def small_convnet(input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_stem")(inputs)
    x = keras.layers.SeparableConv2D(
        32, 3, padding="same", activation="relu", name="conv_separable"
    )(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Dense(32, activation="relu", name="dense_hidden")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="dense_output")(x)
    return keras.Model(inputs, outputs)
