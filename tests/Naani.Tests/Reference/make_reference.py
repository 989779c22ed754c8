#!/usr/bin/env python3
"""Writes the small PyTorch reference files that Naani's tests compare against.

Run from anywhere: python3 tests/Naani.Tests/Reference/make_reference.py (PyTorch >= 1.13, numpy).
Each JSON file holds seeded inputs, weights, the layer's output, an upstream gradient dy, and the
gradients dx, dkernel, dbias that PyTorch's autograd computes for L = sum(y * dy).

Everything is stored in Naani's (Keras's) layout: images NHWC, conv kernels HWIO, dense kernels
(inputs, units). The conversion to PyTorch's NCHW / OIHW happens inside the autograd graph, so the
gradients come out in Naani's layout too. Inputs are float32 values (written with 9 significant
digits, which round-trips float32); the references are computed in float64 from those values.

Keras's 'same' padding puts the odd pixel of padding after the input (bottom/right); PyTorch pads
symmetrically, so the padding is applied explicitly with F.pad: zeros for convolution, -inf for max
pooling, and for average pooling a window sum divided by the count of real (unpadded) pixels, which
is what Keras does and what PyTorch's count_include_pad=False does for symmetric padding.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))


def uniform(rng, shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def leaf(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def keras_pads(size, kernel, stride, padding):
    """(before, after) padding of one axis, as Keras/TensorFlow compute it."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_nchw(x, h, w, kernel, strides, padding, value=0.0):
    top, bottom = keras_pads(h, kernel[0], strides[0], padding)
    left, right = keras_pads(w, kernel[1], strides[1], padding)
    return F.pad(x, (left, right, top, bottom), value=value)


ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


def tensor_json(t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return {"shape": list(a.shape), "data": [float("%.9g" % v) for v in a.reshape(-1).tolist()]}


def write(name, description, layer, config, tensors, scalars=None):
    doc = {"description": description, "layer": layer, "config": config,
           "tensors": {k: tensor_json(v) for k, v in tensors.items()}}
    if scalars:
        doc["scalars"] = {k: float("%.12g" % v) for k, v in scalars.items()}
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{name}: {os.path.getsize(path)} bytes")


def conv2d(name, seed, batch, h, w, c, filters, kernel, strides, padding, activation, description):
    rng = np.random.default_rng(seed)
    x_np = uniform(rng, (batch, h, w, c))
    k_np = uniform(rng, (kernel[0], kernel[1], c, filters), -0.5, 0.5)
    b_np = uniform(rng, (filters,), -0.5, 0.5)
    x, k, b = leaf(x_np), leaf(k_np), leaf(b_np)
    xp = pad_nchw(x.permute(0, 3, 1, 2), h, w, kernel, strides, padding)
    z = F.conv2d(xp, k.permute(3, 2, 0, 1), b, stride=strides).permute(0, 2, 3, 1)
    y = ACTIVATIONS[activation](z)
    dy = torch.tensor(uniform(rng, tuple(y.shape)), dtype=torch.float64)
    (y * dy).sum().backward()
    config = {"filters": filters, "kernel_size": list(kernel), "strides": list(strides),
              "padding": padding, "activation": activation}
    write(name, description, "Conv2D", config,
          {"x": x_np, "kernel": k_np, "bias": b_np, "y": y, "dy": dy, "dx": x.grad, "dkernel": k.grad, "dbias": b.grad})


def pooling(name, seed, kind, batch, h, w, c, pool, strides, padding, description):
    rng = np.random.default_rng(seed)
    x_np = uniform(rng, (batch, h, w, c))
    x = leaf(x_np)
    xn = x.permute(0, 3, 1, 2)
    if kind == "MaxPooling2D":
        y = F.max_pool2d(pad_nchw(xn, h, w, pool, strides, padding, float("-inf")), pool, strides)
    else:
        window_sum = F.avg_pool2d(pad_nchw(xn, h, w, pool, strides, padding), pool, strides, divisor_override=1)
        count = F.avg_pool2d(pad_nchw(torch.ones_like(xn), h, w, pool, strides, padding), pool, strides, divisor_override=1)
        y = window_sum / count
        top, bottom = keras_pads(h, pool[0], strides[0], padding)
        left, right = keras_pads(w, pool[1], strides[1], padding)
        if top == bottom and left == right:
            builtin = F.avg_pool2d(xn, pool, strides, padding=(top, left), count_include_pad=False)
            assert torch.allclose(y, builtin), "count_include_pad=False should agree with the explicit count"
    y = y.permute(0, 2, 3, 1)
    dy = torch.tensor(uniform(rng, tuple(y.shape)), dtype=torch.float64)
    (y * dy).sum().backward()
    config = {"pool_size": list(pool), "strides": list(strides), "padding": padding}
    write(name, description, kind, config, {"x": x_np, "y": y, "dy": dy, "dx": x.grad})


def dense(name, seed):
    rng = np.random.default_rng(seed)
    x_np = uniform(rng, (3, 5))
    k_np = uniform(rng, (5, 4), -0.8, 0.8)
    b_np = uniform(rng, (4,), -0.3, 0.3)
    x, k, b = leaf(x_np), leaf(k_np), leaf(b_np)
    y = torch.relu(x @ k + b)
    dy = torch.tensor(uniform(rng, tuple(y.shape)), dtype=torch.float64)
    (y * dy).sum().backward()
    write(name, "Dense(4, relu) on (3, 5): y = relu(x W + b), W of shape (inputs, units)", "Dense",
          {"units": 4, "activation": "relu"},
          {"x": x_np, "kernel": k_np, "bias": b_np, "y": y, "dy": dy, "dx": x.grad, "dkernel": k.grad, "dbias": b.grad})


def binary_crossentropy(name, seed):
    rng = np.random.default_rng(seed)
    z_np = uniform(rng, (4, 3), -3, 3)
    y_np = rng.integers(0, 2, size=(4, 3)).astype(np.float32)
    y = torch.tensor(y_np, dtype=torch.float64)
    # sigmoid values, and the loss from the stored float32 probabilities (Naani's input)
    z = leaf(z_np)
    p64 = torch.sigmoid(z)
    p_np = p64.detach().numpy().astype(np.float32)
    p = leaf(p_np)
    eps = 1e-7
    pc = p.clamp(eps, 1 - eps)
    loss = -(y * torch.log(pc) + (1 - y) * torch.log(1 - pc)).mean()   # Keras: mean over units, then batch
    loss.backward()
    # fused: the same loss differentiated with respect to the logits
    loss_z = F.binary_cross_entropy(p64, y)
    loss_z.backward()
    # from logits
    z2 = leaf(z_np)
    loss_logits = F.binary_cross_entropy_with_logits(z2, y)
    loss_logits.backward()
    write(name, "Binary cross-entropy on sigmoid(z): loss, dL/dp, dL/dz (fused), and from logits", "BinaryCrossEntropy", {},
          {"z": z_np, "p": p64, "p32": p_np, "y": y_np, "grad_p": p.grad, "grad_z": z.grad, "grad_logits": z2.grad},
          {"loss": loss.item(), "loss_logits": loss_logits.item()})


def categorical_crossentropy(name, seed):
    rng = np.random.default_rng(seed)
    z_np = uniform(rng, (4, 5), -3, 3)
    labels = rng.integers(0, 5, size=4)
    y_np = np.eye(5, dtype=np.float32)[labels]
    y = torch.tensor(y_np, dtype=torch.float64)
    z = leaf(z_np)
    p64 = torch.softmax(z, dim=-1)
    p_np = p64.detach().numpy().astype(np.float32)
    p = leaf(p_np)
    # Keras: p / sum(p), clipped to [eps, 1 - eps], then -sum y log p, mean over the batch
    pn = (p / p.sum(dim=-1, keepdim=True)).clamp(1e-7, 1 - 1e-7)
    loss = -(y * torch.log(pn)).sum(dim=-1).mean()
    loss.backward()
    loss_z = -(y * torch.log(p64)).sum(dim=-1).mean()
    loss_z.backward()
    z2 = leaf(z_np)
    loss_logits = F.cross_entropy(z2, torch.tensor(labels))
    loss_logits.backward()
    write(name, "Categorical cross-entropy on softmax(z): loss, dL/dp, dL/dz (fused), and from logits", "CategoricalCrossEntropy", {},
          {"z": z_np, "p": p64, "p32": p_np, "y": y_np, "labels": labels.astype(np.float32),
           "grad_p": p.grad, "grad_z": z.grad, "grad_logits": z2.grad},
          {"loss": loss.item(), "loss_logits": loss_logits.item()})


def main():
    conv2d("conv2d_3x3_same.json", 1, 2, 5, 5, 3, 4, (3, 3), (1, 1), "same", "linear",
           "Conv2D 4 filters 3x3, stride 1, same, on 2 images 5x5x3 (pad 1 on every side)")
    conv2d("conv2d_4x4_stride2_same.json", 2, 2, 8, 7, 2, 3, (4, 4), (2, 2), "same", "relu",
           "Conv2D 3 filters 4x4, stride 2, same, relu, on 8x7x2: even height pads 1/1, odd width pads 1 left, 2 right")
    conv2d("conv2d_3x3_stride2_same_even.json", 3, 2, 6, 6, 3, 2, (3, 3), (2, 2), "same", "tanh",
           "Conv2D 2 filters 3x3, stride 2, same, tanh, on 6x6x3: pads 0 top/left and 1 bottom/right")
    conv2d("conv2d_5x5_valid_1ch.json", 4, 2, 7, 7, 1, 3, (5, 5), (1, 1), "valid", "sigmoid",
           "Conv2D 3 filters 5x5, valid, sigmoid, on 7x7x1")
    conv2d("conv2d_2x3_stride2x1_valid.json", 5, 2, 6, 7, 2, 2, (2, 3), (2, 1), "valid", "linear",
           "Conv2D 2 filters 2x3, strides (2, 1), valid, on 6x7x2")
    pooling("maxpool_2x2.json", 6, "MaxPooling2D", 2, 4, 6, 3, (2, 2), (2, 2), "valid",
            "MaxPooling2D 2x2 (stride 2, valid) on 4x6x3")
    pooling("maxpool_3x3_stride2_same.json", 7, "MaxPooling2D", 2, 6, 7, 2, (3, 3), (2, 2), "same",
            "MaxPooling2D 3x3, stride 2, same, on 6x7x2: pads 0/1 rows (bottom) and 1/1 columns")
    pooling("avgpool_2x2_valid.json", 8, "AveragePooling2D", 2, 4, 5, 2, (2, 2), (2, 2), "valid",
            "AveragePooling2D 2x2, valid, on 4x5x2 (the last column is dropped)")
    pooling("avgpool_3x3_stride2_same.json", 9, "AveragePooling2D", 2, 6, 7, 2, (3, 3), (2, 2), "same",
            "AveragePooling2D 3x3, stride 2, same, on 6x7x2: padding excluded from the average, as Keras")
    dense("dense_relu.json", 10)
    binary_crossentropy("loss_binary_crossentropy.json", 11)
    categorical_crossentropy("loss_categorical_crossentropy.json", 12)


if __name__ == "__main__":
    main()
