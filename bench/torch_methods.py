"""PyTorch references of ticketsweep's training step for each method (batch 128).

Usage: torch_methods.py METHOD THREADS SECONDS [ARCH]. ARCH: mlp (LeNet-300-100 on 28x28, the default) or conv4
(edge-popup's Conv-4 on 32x32x3: two 3x3 convolutions of 64, max pool, two of 128, max pool, FC 256-256-10, all
bias-free). The same computation as src/train/masks/<method>.ts, with each method's default optimiser
(src/spec/schema.ts TRAINING_DEFAULTS), written as a researcher would in PyTorch:
- gates: z = clamp(mu + sigma*eps, 0, 1), loss = CE + lambda * sum Phi(mu/sigma), Adam.
- hard-concrete: s = sigmoid((log u - log(1-u) + log_alpha)/beta), z = clamp(s*(zeta-gamma) + gamma, 0, 1),
  loss = CE + lambda * sum sigmoid(log_alpha - beta*log(-gamma/zeta)), Adam.
- cs: m = sigmoid(beta*s)/sigmoid(s0), loss = CE + lambda * sum m, SGD with momentum.
- edge-popup: exact top-k of |scores| per layer (k = 50%), straight-through gradient, SGD with momentum and
  weight decay.
- dense: the weights themselves trained, Adam.
Frozen weights are signed Kaiming constants. Prints {"steps_per_s": ...}.
"""
import json, sys, time
import torch
import torch.nn.functional as F

method = sys.argv[1] if len(sys.argv) > 1 else "gates"
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
arch = sys.argv[4] if len(sys.argv) > 4 else "mlp"
torch.set_num_threads(threads)
torch.manual_seed(0)
if arch == "mlp":
    shapes = [(300, 784), (100, 300), (10, 100)]
    x = torch.randn(128, 784)
elif arch == "conv4":
    shapes = [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 8 * 8 * 128), (256, 256), (10, 256)]
    x = torch.randn(128, 3, 32, 32)
else:
    raise SystemExit(f"unknown architecture {arch}")
ws = [torch.sign(torch.randn(*s)) * (2.0 / (torch.tensor(s[1:]).prod().item())) ** 0.5 for s in shapes]
y = torch.randint(0, 10, (128,))
lam = 1e-6
normal = torch.distributions.Normal(0.0, 1.0)


class TopK(torch.autograd.Function):
    """edge-popup's GetSubnet: the top-k of |scores| kept, the gradient passed straight through."""

    @staticmethod
    def forward(ctx, scores, k):
        flat = scores.abs().flatten()
        j = int((1 - k) * flat.numel())
        out = torch.ones_like(flat)
        if j > 0:
            out[flat.kthvalue(j).values >= flat] = 0  # the j smallest go (ties go too, as in the reference)
        return out.view_as(scores)

    @staticmethod
    def backward(ctx, g):
        return g, None


if method == "gates":
    params = [torch.full_like(w, 0.5).add_(0.01 * torch.randn_like(w)).requires_grad_() for w in ws]
    opt = torch.optim.Adam(params, lr=0.05)

    def effective():
        return [w * torch.clamp(mu + 0.5 * torch.randn_like(mu), 0.0, 1.0) for w, mu in zip(ws, params)]

    def penalty():
        return lam * sum(normal.cdf(mu / 0.5).sum() for mu in params)
elif method == "hard-concrete":
    beta, gamma, zeta = 2 / 3, -0.1, 1.1
    shift = beta * torch.log(torch.tensor(-gamma / zeta))
    params = [(0.01 * torch.randn_like(w)).requires_grad_() for w in ws]
    opt = torch.optim.Adam(params, lr=0.05)

    def effective():
        out = []
        for w, la in zip(ws, params):
            u = torch.rand_like(la).clamp(1e-6, 1 - 1e-6)
            s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + la) / beta)
            out.append(w * torch.clamp(s * (zeta - gamma) + gamma, 0.0, 1.0))
        return out

    def penalty():
        return lam * sum(torch.sigmoid(la - shift).sum() for la in params)
elif method == "cs":
    params = [torch.zeros_like(w).requires_grad_() for w in ws]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    scale = 1 / torch.sigmoid(torch.tensor(0.0))

    def effective():
        return [w * torch.sigmoid(s) * scale for w, s in zip(ws, params)]

    def penalty():
        return lam * sum((torch.sigmoid(s) * scale).sum() for s in params)
elif method == "edge-popup":
    params = [(torch.randn_like(w) * 0.01).requires_grad_() for w in ws]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)

    def effective():
        return [w * TopK.apply(s, 0.5) for w, s in zip(ws, params)]

    def penalty():
        return 0.0
elif method == "dense":
    params = [w.clone().requires_grad_() for w in ws]
    opt = torch.optim.Adam(params, lr=1e-3)

    def effective():
        return params

    def penalty():
        return 0.0
else:
    raise SystemExit(f"unknown method {method}")


def logits(we):
    h = x
    if arch == "conv4":
        h = F.relu(F.conv2d(h, we[0], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, we[1], padding=1)), 2)
        h = F.relu(F.conv2d(h, we[2], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, we[3], padding=1)), 2).flatten(1)
        we = we[4:]
    for l, w in enumerate(we):
        h = h @ w.t()
        if l < len(we) - 1:
            h = torch.relu(h)
    return h


def step():
    loss = F.cross_entropy(logits(effective()), y) + penalty()
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(20 if arch == "mlp" else 2):
    step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds or n < 2:
    step()
    n += 1
print(json.dumps({"steps_per_s": n / (time.perf_counter() - t0), "threads": threads, "torch": torch.__version__}))
