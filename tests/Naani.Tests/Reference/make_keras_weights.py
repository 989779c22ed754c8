#!/usr/bin/python3
"""Small Keras HDF5 weight files for Naani's KerasWeights tests, written with h5py in the layout Keras uses, and the
output PyTorch computes with those weights for a fixed input (so a test can check the whole mapping: HWIO kernels,
NHWC flattening, the order of the batch normalization weights).

The layout is that of Keras's legacy HDF5 weights (tf.keras model.save_weights('x.h5'), keras.applications' files,
Keras 3's legacy_h5_format): the root (or, in a whole-model file, the group model_weights) has the attribute
layer_names (byte strings; Keras splits an attribute over 64 KB into layer_names0, layer_names1, ...), and each
layer a group with the attribute weight_names ('block1_conv1/kernel:0', ...; an empty float array for a layer
without weights) and one dataset per weight at group/weight_name.

The model (Keras names):  Input 6x6x1 -> block1_conv1 Conv2D(4, 3x3, relu) -> block1_bn BatchNormalization
  -> block1_pool MaxPooling2D(2) -> flatten Flatten -> fc Dense(3, softmax)

Run with Debian's python3-h5py and python3-torch: /usr/bin/python3 make_keras_weights.py
"""
import io
import json
import os
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
rng = np.random.default_rng(7)


def f32(*shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


LAYERS = [  # (name, [(weight name, value)])
    ("input_1", []),
    ("block1_conv1", [("kernel", f32(3, 3, 1, 4)), ("bias", f32(4, low=-0.1, high=0.1))]),
    ("block1_bn", [("gamma", f32(4, low=0.5, high=1.5)), ("beta", f32(4, low=-0.2, high=0.2)),
                   ("moving_mean", f32(4, low=0.0, high=0.5)), ("moving_variance", f32(4, low=0.5, high=1.5))]),
    ("block1_pool", []),
    ("flatten", []),
    ("fc", [("kernel", f32(16, 3)), ("bias", f32(3, low=-0.1, high=0.1))]),
]


def write_weights(group, chunked_names=False):
    names = np.asarray([name.encode("utf8") for name, _ in LAYERS])
    if chunked_names:  # what Keras does for an attribute too large for an object header
        group.attrs["layer_names0"] = names[:3]
        group.attrs["layer_names1"] = names[3:]
    else:
        group.attrs["layer_names"] = names
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = b"2.13.1"
    for name, weights in sorted(LAYERS, key=lambda layer: layer[0]):
        g = group.create_group(name)
        weight_names = [f"{name}/{w}:0".encode("utf8") for w, _ in weights]
        g.attrs["weight_names"] = np.asarray(weight_names)   # np.asarray([]) is float64: what Keras writes for no weights
        for weight_name, (_, value) in zip(weight_names, weights):
            g.create_dataset(weight_name, value.shape, dtype=value.dtype)[:] = value


def expected_output(x):
    w = {name: dict(weights) for name, weights in LAYERS}
    t = torch.from_numpy(x).double().permute(0, 3, 1, 2)                                  # NHWC -> NCHW
    kernel = torch.from_numpy(w["block1_conv1"]["kernel"]).double().permute(3, 2, 0, 1)   # HWIO -> OIHW
    t = F.relu(F.conv2d(t, kernel, torch.from_numpy(w["block1_conv1"]["bias"]).double()))
    bn = {k: torch.from_numpy(v).double() for k, v in w["block1_bn"].items()}
    t = F.batch_norm(t, bn["moving_mean"], bn["moving_variance"], bn["gamma"], bn["beta"], training=False, eps=1e-3)
    t = F.max_pool2d(t, 2)
    t = t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)                                    # Keras flattens NHWC
    t = t @ torch.from_numpy(w["fc"]["kernel"]).double() + torch.from_numpy(w["fc"]["bias"]).double()
    return torch.softmax(t, dim=1).numpy()


# The same model as Keras 3 saves it. Keras 3 keys each layer of model.layers by its class in snake case, numbered per
# class (saving_lib._save_container_state), not by its name, under layers/KEY/vars/0, 1, ... (H5IOStore), with an
# empty vars group at the root for the model's own variables.
KERAS3_KEYS = {"block1_conv1": "conv2d", "block1_bn": "batch_normalization", "block1_pool": "max_pooling2d",
               "flatten": "flatten", "fc": "dense"}

KERAS3_CONFIG = {
    "module": "keras", "class_name": "Sequential", "registered_name": None,
    "config": {"name": "small", "trainable": True, "dtype": "float32", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
         "config": {"batch_shape": [None, 6, 6, 1], "dtype": "float32", "sparse": False, "name": "input_1"}},
        {"module": "keras.layers", "class_name": "Conv2D", "registered_name": None,
         "config": {"name": "block1_conv1", "trainable": True, "dtype": "float32", "filters": 4, "kernel_size": [3, 3],
                    "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1],
                    "groups": 1, "activation": "relu", "use_bias": True,
                    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                           "config": {"seed": None}, "registered_name": None},
                    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                         "registered_name": None},
                    "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                    "kernel_constraint": None, "bias_constraint": None}},
        {"module": "keras.layers", "class_name": "BatchNormalization", "registered_name": None,
         "config": {"name": "block1_bn", "trainable": True, "dtype": "float32", "axis": -1, "momentum": 0.99,
                    "epsilon": 0.001, "center": True, "scale": True, "synchronized": False}},
        {"module": "keras.layers", "class_name": "MaxPooling2D", "registered_name": None,
         "config": {"name": "block1_pool", "trainable": True, "dtype": "float32", "pool_size": [2, 2],
                    "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}},
        {"module": "keras.layers", "class_name": "Flatten", "registered_name": None,
         "config": {"name": "flatten", "trainable": True, "dtype": "float32", "data_format": "channels_last"}},
        {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
         "config": {"name": "fc", "trainable": True, "dtype": "float32", "units": 3, "activation": "softmax",
                    "use_bias": True}}]},
    "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                                     "config": {"name": "adam", "learning_rate": 0.0005}, "registered_name": None},
                       "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}}

# tf.keras 2's model_config of the same model (no InputLayer: batch_input_shape on the first layer).
KERAS2_CONFIG = {"class_name": "Sequential", "config": {"name": "small", "layers": [
    {"class_name": "Conv2D", "config": {"name": "block1_conv1", "trainable": True, "batch_input_shape": [None, 6, 6, 1],
                                        "dtype": "float32", "filters": 4, "kernel_size": [3, 3], "strides": [1, 1],
                                        "padding": "valid", "activation": "relu", "use_bias": True}},
    {"class_name": "BatchNormalization", "config": {"name": "block1_bn", "axis": [3], "momentum": 0.99, "epsilon": 0.001}},
    {"class_name": "MaxPooling2D", "config": {"name": "block1_pool", "pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}},
    {"class_name": "Flatten", "config": {"name": "flatten"}},
    {"class_name": "Dense", "config": {"name": "fc", "units": 3, "activation": "softmax"}}]},
    "keras_version": "2.13.1", "backend": "tensorflow"}


def write_keras3_weights(f):
    layers = f.create_group("layers")
    for name, weights in LAYERS:
        if name == "input_1":
            continue
        vars_group = layers.create_group(KERAS3_KEYS[name]).create_group("vars")
        for i, (_, value) in enumerate(weights):
            vars_group[str(i)] = value
    f.create_group("vars")


def main():
    os.makedirs(HERE, exist_ok=True)
    with h5py.File(os.path.join(HERE, "small_weights.h5"), "w") as f:
        write_weights(f)
    with h5py.File(os.path.join(HERE, "small_model.h5"), "w") as f:   # model.save('x.h5'): weights under model_weights
        f.attrs["model_config"] = b'{"class_name": "Sequential"}'
        write_weights(f.create_group("model_weights"), chunked_names=True)
    with h5py.File(os.path.join(HERE, "small_keras3.weights.h5"), "w") as f:   # model.save_weights('x.weights.h5')
        write_keras3_weights(f)
    with h5py.File(os.path.join(HERE, "small_model_config.h5"), "w") as f:   # tf.keras model.save('x.h5'): architecture too
        f.attrs["model_config"] = json.dumps(KERAS2_CONFIG).encode("utf8")
        write_weights(f.create_group("model_weights"))
    buffer = io.BytesIO()   # model.save('x.keras'): a zip of metadata.json, config.json and model.weights.h5
    with h5py.File(buffer, "w") as f:
        write_keras3_weights(f)
    with zipfile.ZipFile(os.path.join(HERE, "small.keras"), "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0", "date_saved": "2026-12-02@06:00:00"}))
        z.writestr("config.json", json.dumps(KERAS3_CONFIG))
        z.writestr("model.weights.h5", buffer.getvalue())
    x = f32(2, 6, 6, 1, low=0.0, high=1.0)
    with open(os.path.join(HERE, "small_expected.json"), "w") as f:
        json.dump({"source": "PyTorch float64 with the weights of small_weights.h5; made by make_keras_weights.py",
                   "x": [float(v) for v in x.reshape(-1)], "y": [float(v) for v in expected_output(x).reshape(-1)]}, f)
        f.write("\n")
    print("wrote", sorted(os.listdir(HERE)))


if __name__ == "__main__":
    main()
