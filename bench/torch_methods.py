"""PyTorch references of ticketsweep's training step for each method (LeNet-300-100, batch 128).

Usage: torch_methods.py METHOD THREADS SECONDS. The same computation as src/train/masks/<method>.ts, with each
method's default optimiser (src/spec/schema.ts TRAINING_DEFAULTS), written as a researcher would in PyTorch:
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
torch.set_num_threads(threads)
torch.manual_seed(0)
dims = [784, 300, 100, 10]
ws = [torch.sign(torch.randn(o, i)) * (2.0 / i) ** 0.5 for i, o in zip(dims[:-1], dims[1:])]
x = torch.randn(128, 784)
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


def step():
    h = x
    we = effective()
    for l, w in enumerate(we):
        h = h @ w.t()
        if l < len(we) - 1:
            h = torch.relu(h)
    loss = F.cross_entropy(h, y) + penalty()
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(20):
    step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    step()
    n += 1
print(json.dumps({"steps_per_s": n / (time.perf_counter() - t0), "threads": threads, "torch": torch.__version__}))
