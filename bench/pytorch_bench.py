#!/usr/bin/env python3
"""PyTorch side of Naani's benchmark: the seeds' models, trained (or run) on random data.

Same model, batch, threads, warm-up and step count as `naani bench`; prints one JSON line.
Run with Debian's /usr/bin/python3 (python3-torch). Layout is NCHW here, as PyTorch prefers;
the arithmetic per image is identical to Naani's NHWC models.
"""
import argparse, json, time, resource
import torch
import torch.nn as nn
import torch.nn.functional as F


class SamePad(nn.Module):
    """Keras/TensorFlow 'same' padding: extra pixel at the bottom/right."""
    def __init__(self, k, s):
        super().__init__(); self.k, self.s = k, s
    def forward(self, x):
        h, w = x.shape[-2:]
        def pads(n):
            out = (n + self.s - 1) // self.s
            total = max((out - 1) * self.s + self.k - n, 0)
            return total // 2, total - total // 2
        t, b = pads(h); l, r = pads(w)
        return F.pad(x, (l, r, t, b))


def build(name):
    if name == "mnist-baseline":
        return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2), nn.Flatten(),
                             nn.Linear(4608, 128), nn.ReLU(), nn.Linear(128, 10)), (1, 28, 28), 10
    if name == "naani-128":
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(32768, 128), nn.ReLU(), nn.Linear(128, 1)), (3, 128, 128), 2
    if name == "cats-dogs-150":
        return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(36992, 512), nn.ReLU(), nn.Linear(512, 1)), (3, 150, 150), 2
    if name == "small-32":
        return nn.Sequential(SamePad(4, 2), nn.Conv2d(3, 10, 4, stride=2), nn.ReLU(),
                             SamePad(3, 2), nn.Conv2d(10, 20, 3, stride=2), nn.ReLU(), nn.Flatten(),
                             nn.Linear(1280, 10)), (3, 32, 32), 10
    if name == "vgg16":
        layers, c = [], 3
        for block in [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]:
            for f in block:
                layers += [nn.Conv2d(c, f, 3, padding=1), nn.ReLU()]
                c = f
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000)]
        return nn.Sequential(*layers), (3, 224, 224), 1000
    raise SystemExit(f"unknown model {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--inference", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, shape, classes = build(a.model)
    x = torch.rand(a.batch_size, *shape)
    if classes == 2:
        y = torch.randint(0, 2, (a.batch_size, 1)).float(); loss_fn = nn.BCEWithLogitsLoss()
    else:
        y = torch.randint(0, classes, (a.batch_size,)); loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    step = infer_step if a.inference else train_step
    model.train(not a.inference)
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": a.model,
                      "batch_size": a.batch_size, "threads": a.threads, "steps": a.steps,
                      "mode": "inference" if a.inference else "train",
                      "images_per_second": a.batch_size * a.steps / dt, "ms_per_step": 1000 * dt / a.steps,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
