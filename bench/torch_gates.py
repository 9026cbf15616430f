"""PyTorch reference of ticketsweep's gate-training step (LeNet-300-100, batch 128, Adam, Bernoulli gates).

The same computation as src/train/masks/gates.ts: frozen U(+-1/sqrt(fan_in)) weights, one gate per weight,
z = clamp(mu + sigma*eps, 0, 1), loss = CE + lambda * sum Phi(mu/sigma). Prints {"steps_per_s": ...}.
"""
import json, sys, time
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
torch.set_num_threads(threads)
torch.manual_seed(0)
dims = [784, 300, 100, 10]
ws = [(torch.rand(o, i) * 2 - 1) / i ** 0.5 for i, o in zip(dims[:-1], dims[1:])]
mus = [torch.full_like(w, 0.5).add_(0.01 * torch.randn_like(w)).requires_grad_() for w in ws]
opt = torch.optim.Adam(mus, lr=0.03)
x = torch.randn(128, 784)
y = torch.randint(0, 10, (128,))
sigma, lam = 0.5, 1e-6
normal = torch.distributions.Normal(0.0, 1.0)


def step():
    h = x
    for l, (w, mu) in enumerate(zip(ws, mus)):
        z = torch.clamp(mu + sigma * torch.randn_like(mu), 0.0, 1.0)
        h = h @ (w * z).t()
        if l < len(ws) - 1:
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, y) + lam * sum(normal.cdf(mu / sigma).sum() for mu in mus)
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
