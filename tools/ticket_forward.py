#!/usr/bin/env python3
"""Rebuilds a ticketsweep ticket from `deno task ticket export ... --format npz|safetensors` in NumPy alone.

Usage: python3 tools/ticket_forward.py OUT_DIR [--torch] [--logits=FILE.npy]

Loads OUT_DIR/manifest.json and the arrays (ticket.npz or ticket.safetensors), multiplies every masked weight
tensor by its binary mask, runs the forward pass the manifest lists (ops in order, channels-last activations)
on the exported test data, and prints the accuracy next to the recorded one. Exit 0 when they agree within the
manifest's tolerance (1e-4: float32 sums in another order than ticketsweep's can flip a sample whose top two
logits are within about 1e-6; 1e-4 allows one such sample in 10,000), 1 when they do not, 2 on a bad export.

--logits=FILE.npy saves the test logits [N, classes] (float32) for a closer comparison.
--torch returns the masked weights as PyTorch tensors too (optional; not needed for the check): see
`torch_state_dict` below.
"""
import json
import os
import struct
import sys

import numpy as np

CHUNK = 500


def load_arrays(out_dir, manifest):
    path = os.path.join(out_dir, manifest["arrays"]["file"])
    if manifest["arrays"]["format"] == "npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "U8": "u1", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    base = 8 + n
    arrays = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        arrays[name] = np.frombuffer(raw[base + a:base + b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return arrays


def masked_weights(manifest, arrays):
    """name -> float32 effective weights (weight * mask where a mask exists)."""
    w = {}
    for t in manifest["tensors"]:
        v = arrays[t["weight"]].astype(np.float32)
        if t["mask"] is not None:
            m = arrays[t["mask"]]
            if m.shape != v.shape or not np.isin(m, (0, 1)).all():
                raise ValueError(f"{t['mask']}: not a 0/1 mask of shape {v.shape}")
            v = v * m.astype(np.float32)
        w[t["name"]] = v
    return w


def conv2d(x, w, stride, padding):
    # x [N, H, W, C], w [O, k, k, C]; patches ordered (ky, kx, c) as the weights' rows
    n, h, wd, c = x.shape
    o, k = w.shape[0], w.shape[1]
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    # one slice per kernel offset, concatenated along channels: columns (ky, kx, c), any NumPy version
    cols = np.concatenate([
        xp[:, ky:ky + (ho - 1) * stride + 1:stride, kx:kx + (wo - 1) * stride + 1:stride, :]
        for ky in range(k) for kx in range(k)
    ], axis=3).reshape(n * ho * wo, k * k * c)
    return (cols @ w.reshape(o, -1).T).reshape(n, ho, wo, o)


def pool(x, size, stride, kind):
    # x [N, H, W, C]; one strided slice per window offset, no padding: floor((H - size) / stride) + 1 rows out
    n, h, wd, c = x.shape
    ho, wo = (h - size) // stride + 1, (wd - size) // stride + 1
    win = np.stack([
        x[:, ky:ky + (ho - 1) * stride + 1:stride, kx:kx + (wo - 1) * stride + 1:stride, :]
        for ky in range(size) for kx in range(size)
    ])
    if kind == "max_pool":
        return win.max(axis=0)
    return (win.astype(np.float64).sum(axis=0) / (size * size)).astype(np.float32)


def norm_last(x, mean, var, eps):
    return ((x - mean) / np.sqrt(np.maximum(var, 0) + eps)).astype(np.float32)


class BatchNormState:
    """Per batch-norm op (by its position in the walk): calibrating (accumulating) or evaluating."""

    def __init__(self):
        self.calibrating = False
        self.acc = {}
        self.stats = {}


def run_ops(ops, x, w, bn, path=""):
    for i, o in enumerate(ops):
        kind, key = o["op"], f"{path}{i}"
        if kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "linear":
            x = x @ w[o["weight"]].T
        elif kind == "conv2d":
            x = conv2d(x, w[o["weight"]], o["stride"], o["padding"])
        elif kind in ("max_pool", "avg_pool"):
            x = pool(x, o.get("size", 2), o.get("stride", 2), kind)
        elif kind == "global_avg_pool":
            x = x.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "gelu":
            x = (0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))).astype(np.float32)
        elif kind == "batch_norm":
            c = x.shape[-1]
            if bn.calibrating:
                flat = x.reshape(-1, c).astype(np.float64)
                s, q = flat.sum(axis=0), (flat * flat).sum(axis=0)
                acc = bn.acc.setdefault(key, [np.zeros(c), np.zeros(c), 0])
                acc[0] += s
                acc[1] += q
                acc[2] += flat.shape[0]
                m = s / flat.shape[0]
                x = norm_last(x, m, q / flat.shape[0] - m * m, o["eps"])
            else:
                m, v = bn.stats[key]
                x = norm_last(x, m, v, o["eps"])
        elif kind == "layer_norm":
            d = x.astype(np.float64)
            m = d.mean(axis=-1, keepdims=True)
            x = norm_last(x, m, (d * d).mean(axis=-1, keepdims=True) - m * m, o["eps"])
        elif kind == "residual":
            a = run_ops(o["body"], x, w, bn, f"{key}.b")
            s = run_ops(o["shortcut"], x, w, bn, f"{key}.s") if o["shortcut"] else x
            x = a + s
            if o["relu"]:
                x = np.maximum(x, 0)
        elif kind == "shortcut_a":
            sub = x[:, ::2, ::2, :]
            before = (o["channels"] - sub.shape[-1]) // 2
            after = o["channels"] - sub.shape[-1] - before
            x = np.pad(sub, ((0, 0), (0, 0), (0, 0), (before, after)))
        elif kind == "patch_embed":
            n, h, wd, c = x.shape
            p = o["patch"]
            patches = x.reshape(n, h // p, p, wd // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, p * p * c)
            emb = patches @ w[o["weight"]].T
            cls = np.broadcast_to(w[o["cls_token"]], (n, 1, emb.shape[-1]))
            x = np.concatenate([cls, emb], axis=1) + w[o["pos_embed"]]
        elif kind == "attention":
            n, t, d = x.shape
            hds, dh = o["heads"], d // o["heads"]
            qkv = (x @ w[o["qkv"]].T).reshape(n, t, 3, hds, dh).transpose(2, 0, 3, 1, 4)  # [3, N, heads, T, dh]
            s = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * np.float32(1 / np.sqrt(dh))
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s = s / s.sum(axis=-1, keepdims=True)
            x = (s @ qkv[2]).transpose(0, 2, 1, 3).reshape(n, t, d) @ w[o["proj"]].T
        elif kind == "class_token":
            x = x[:, 0, :]
        else:
            raise ValueError(f"unknown op '{kind}'")
        x = x.astype(np.float32, copy=False)
    return x


def calibrate(manifest, arrays, w, bn):
    cal = manifest.get("batch_norm_calibration")
    if not cal:
        return
    xs = arrays[cal["samples"]].astype(np.float32)
    bn.calibrating = True
    for s in range(0, xs.shape[0], cal["chunk"]):
        run_ops(manifest["ops"], xs[s:s + cal["chunk"]], w, bn)
    bn.calibrating = False
    for key, (s, q, n) in bn.acc.items():
        m = s / n
        bn.stats[key] = (m, q / n - m * m)


def evaluate(manifest, arrays, w, keep_logits=None):
    bn = BatchNormState()
    calibrate(manifest, arrays, w, bn)
    x, y = arrays[manifest["data"]["test_x"]].astype(np.float32), arrays[manifest["data"]["test_y"]]
    correct, near = 0, 0
    for s in range(0, x.shape[0], CHUNK):
        logits = run_ops(manifest["ops"], x[s:s + CHUNK], w, bn)
        if keep_logits is not None:
            keep_logits.append(logits)
        correct += int((logits.argmax(axis=1) == y[s:s + CHUNK]).sum())
        top2 = np.sort(logits, axis=1)[:, -2:]
        near += int((top2[:, 1] - top2[:, 0] <= 1e-5 * np.maximum(1, np.abs(top2[:, 1]))).sum())
    return correct / x.shape[0], near


def torch_state_dict(manifest, arrays):
    """The masked weights as PyTorch tensors (PyTorch optional: only imported here)."""
    import torch  # noqa: PLC0415

    return {k: torch.from_numpy(v.copy()) for k, v in masked_weights(manifest, arrays).items()}


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out_dir = args[0]
    try:
        with open(os.path.join(out_dir, "manifest.json")) as f:
            manifest = json.load(f)
        if manifest.get("format") != "ticketsweep-ticket-portable":
            raise ValueError("manifest.json is not a ticketsweep-ticket-portable export")
        arrays = load_arrays(out_dir, manifest)
        w = masked_weights(manifest, arrays)
    except (OSError, ValueError, KeyError) as e:
        print(f"ticket_forward: {out_dir}: {e}", file=sys.stderr)
        return 2
    if "--torch" in argv:
        sd = torch_state_dict(manifest, arrays)
        print(f"torch: {len(sd)} masked weight tensors")
    saved = [a.split("=", 1)[1] for a in argv if a.startswith("--logits=")]
    kept_logits = [] if saved else None
    acc, near = evaluate(manifest, arrays, w, kept_logits)
    if saved:
        np.save(saved[0], np.concatenate(kept_logits))
    rec = manifest["recorded"]
    tol = rec["tolerance"]
    kept = sum(t["kept"] for t in manifest["tensors"] if t["kept"] is not None)
    total = sum(int(np.prod(t["shape"])) for t in manifest["tensors"] if t["mask"] is not None)
    print(f"{manifest['architecture']}: {len(manifest['tensors'])} tensors, {kept} of {total} masked weights kept "
          f"(sparsity {1 - kept / total:.4f})")
    print(f"accuracy {acc:.6f} on {manifest['data']['samples']} test samples (numpy {np.__version__}); "
          f"recorded {rec['accuracy']:.6f} on {rec['backend']}; difference {abs(acc - rec['accuracy']):.2e} "
          f"(tolerance {tol:g}; {near} samples with near-tied top logits)")
    ok = abs(acc - rec["accuracy"]) <= tol
    print("reproduced" if ok else "NOT reproduced")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
