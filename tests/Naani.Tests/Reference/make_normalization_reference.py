#!/usr/bin/python3
"""Reference values for Naani's normalization layers, computed with PyTorch in float64.

Writes normalization.json beside this script: for each case the NHWC input x, the weights, the output y of the
forward pass, and for the objective L = sum(y * dy) with the given dy the gradients dx, dgamma, dbeta.
Run with Debian's python3-torch (1.13): /usr/bin/python3 make_normalization_reference.py

Conventions bridged here (Keras, which Naani follows, vs PyTorch):
- layout: Keras/Naani are NHWC, PyTorch's norms are NCHW: x is permuted in and y, dx out;
- BatchNorm momentum: Keras moving = moving * m + batch * (1 - m); PyTorch running = running * (1 - p) + batch * p,
  so p = 1 - m (0.01 for Keras's 0.99);
- BatchNorm moving variance: PyTorch updates running_var with the unbiased batch variance (n / (n - 1)), Keras 3 with
  the biased one that it also normalizes with. Both are recorded: moving_variance (Keras's) and torch_running_var.
- epsilon: Keras's default 1e-3 is passed to PyTorch (whose own default is 1e-5).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(20240928)


def values(t):
    # 9 significant digits: exact for the float32 inputs, and far below the tolerance for the float64 results
    return [float(f"{float(v):.9g}") for v in t.detach().reshape(-1)]


def uniform(*shape, low=-1.0, high=1.0):
    # float32-representable values, held in float64, so Naani's float32 inputs are exactly these
    return (torch.rand(*shape, dtype=torch.float32) * (high - low) + low).double()


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def gradients(forward, x, gamma, beta, dy):
    x = x.clone().requires_grad_(True)
    gamma = gamma.clone().requires_grad_(True)
    beta = beta.clone().requires_grad_(True)
    y = forward(x, gamma, beta)
    (y * dy).sum().backward()
    return y, x.grad, gamma.grad, beta.grad


def batch_norm_cases():
    cases = []
    n, h, w, c = 4, 3, 3, 5
    momentum, eps = 0.99, 1e-3
    x = uniform(n, h, w, c, low=-2.0, high=3.0)
    gamma = uniform(c, low=0.5, high=1.5)
    beta = uniform(c)
    moving_mean = uniform(c, low=-0.5, high=0.5)
    moving_var = uniform(c, low=0.5, high=2.0)
    dy = uniform(n, h, w, c)
    for training in (True, False):
        running_mean, running_var = moving_mean.clone(), moving_var.clone()

        def forward(x, gamma, beta):
            return nhwc(F.batch_norm(nchw(x), running_mean, running_var, gamma, beta,
                                     training=training, momentum=1 - momentum, eps=eps))

        y, dx, dgamma, dbeta = gradients(forward, x, gamma, beta, dy)
        case = {
            "name": "batch_norm_training" if training else "batch_norm_inference",
            "training": training, "shape": [n, h, w, c], "momentum": momentum, "epsilon": eps,
            "x": values(x), "gamma": values(gamma), "beta": values(beta),
            "moving_mean": values(moving_mean), "moving_variance": values(moving_var), "dy": values(dy),
            "y": values(y), "dx": values(dx), "dgamma": values(dgamma), "dbeta": values(dbeta),
        }
        if training:
            batch_var = x.reshape(-1, c).var(dim=0, unbiased=False)
            case["moving_mean_after"] = values(running_mean)
            case["moving_variance_after"] = values(moving_var * momentum + batch_var * (1 - momentum))
            case["torch_running_var_after"] = values(running_var)
        cases.append(case)
    return cases


def layer_norm_cases():
    cases = []
    n, h, w, c = 3, 2, 3, 6
    eps = 1e-3
    x = uniform(n, h, w, c, low=-2.0, high=2.0)
    dy = uniform(n, h, w, c)
    for name, axes, normalized in (("layer_norm_last_axis", [-1], [c]), ("layer_norm_whole_sample", [1, 2, 3], [h, w, c])):
        gamma = uniform(*normalized, low=0.5, high=1.5)
        beta = uniform(*normalized)
        y, dx, dgamma, dbeta = gradients(lambda x, g, b: F.layer_norm(x, normalized, g, b, eps), x, gamma, beta, dy)
        cases.append({
            "name": name, "axes": axes, "shape": [n, h, w, c], "epsilon": eps,
            "x": values(x), "gamma": values(gamma), "beta": values(beta), "dy": values(dy),
            "y": values(y), "dx": values(dx), "dgamma": values(dgamma), "dbeta": values(dbeta),
        })
    return cases


def group_norm_cases():
    cases = []
    n, h, w, c = 2, 3, 4, 6
    eps = 1e-3
    x = uniform(n, h, w, c, low=-1.0, high=3.0)
    gamma = uniform(c, low=0.5, high=1.5)
    beta = uniform(c)
    dy = uniform(n, h, w, c)
    # groups = c is instance normalization (PyTorch's F.instance_norm gives the same numbers)
    for groups in (1, 2, 3, c):
        y, dx, dgamma, dbeta = gradients(lambda x, g, b: nhwc(F.group_norm(nchw(x), groups, g, b, eps)), x, gamma, beta, dy)
        if groups == c:
            y2 = nhwc(F.instance_norm(nchw(x), weight=gamma, bias=beta, eps=eps))
            assert torch.allclose(y, y2, atol=1e-12)
        cases.append({
            "name": "instance_norm" if groups == c else f"group_norm_{groups}_groups", "groups": groups,
            "shape": [n, h, w, c], "epsilon": eps,
            "x": values(x), "gamma": values(gamma), "beta": values(beta), "dy": values(dy),
            "y": values(y), "dx": values(dx), "dgamma": values(dgamma), "dbeta": values(dbeta),
        })
    return cases


def main():
    reference = {
        "source": f"PyTorch {torch.__version__}, float64; made by make_normalization_reference.py",
        "batch_norm": batch_norm_cases(),
        "layer_norm": layer_norm_cases(),
        "group_norm": group_norm_cases(),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "normalization.json")
    with open(path, "w") as f:
        # one line per case: small in git, and a diff shows which case changed
        f.write("{\n" + f' "source": {json.dumps(reference.pop("source"))},\n')
        f.write(",\n".join(f' "{kind}": [\n' + ",\n".join("  " + json.dumps(case, separators=(",", ":")) for case in cases) + "\n ]"
                            for kind, cases in reference.items()))
        f.write("\n}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
