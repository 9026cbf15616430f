"""PyTorch reference of ticketsweep's gate-training step on edge-popup's Conv-4 (32x32x3 inputs, batch 128, Adam).

The same computation as ticketsweep's conv4 with Bernoulli gates: two 3x3 convolutions (64), max pool, two (128),
max pool, FC 256-256-10, bias-free, frozen weights, one gate per weight, loss = CE + lambda * sum Phi(mu/sigma).
Prints {"steps_per_s": ...}.
"""
import json, sys, time
import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 128
torch.set_num_threads(threads)
torch.manual_seed(0)
shapes = [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 8 * 8 * 128), (256, 256), (10, 256)]
ws = [torch.randn(*s) * (2.0 / (s[1] * (s[2] * s[3] if len(s) == 4 else 1))) ** 0.5 for s in shapes]
mus = [torch.full_like(w, 0.5).add_(0.01 * torch.randn_like(w)).requires_grad_() for w in ws]
opt = torch.optim.Adam(mus, lr=0.05)
x = torch.randn(batch, 3, 32, 32)
y = torch.randint(0, 10, (batch,))
sigma, lam = 0.5, 1e-6
normal = torch.distributions.Normal(0.0, 1.0)


def step():
    we = [w * torch.clamp(mu + sigma * torch.randn_like(mu), 0.0, 1.0) for w, mu in zip(ws, mus)]
    h = F.relu(F.conv2d(x, we[0], padding=1))
    h = F.max_pool2d(F.relu(F.conv2d(h, we[1], padding=1)), 2)
    h = F.relu(F.conv2d(h, we[2], padding=1))
    h = F.max_pool2d(F.relu(F.conv2d(h, we[3], padding=1)), 2)
    h = h.flatten(1)
    h = F.relu(h @ we[4].t())
    h = F.relu(h @ we[5].t())
    h = h @ we[6].t()
    loss = F.cross_entropy(h, y) + lam * sum(normal.cdf(mu / sigma).sum() for mu in mus)
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(2):
    step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds or n < 2:
    step()
    n += 1
print(json.dumps({"steps_per_s": n / (time.perf_counter() - t0), "threads": threads, "torch": torch.__version__}))
