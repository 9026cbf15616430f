"""Optuna's multi-objective samplers as a strategy of `deno task bench --search` (bench/search.ts).

Ask/tell over stdin/stdout, one JSON object per line: this process asks Optuna for a point of the bench's space
(lambda 1e-7..1e-4 log, lr LR_MIN..LR_MAX log, default 0.01..0.1) and prints {"lambda": .., "lr": ..};
bench/search.ts trains that trial and answers with its own ticket's objectives {"sparsity": .., "val_accuracy": ..},
both maximised, which are told to Optuna. Usage: optuna_ask_tell.py SAMPLER SEED N [LR_MIN LR_MAX], SAMPLER one of
tpe (multi-objective TPE, Optuna's default startup of 10 random trials), nsga2 (NSGA-II, population 8).
"""
import json
import sys

import optuna

sampler_name, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lr_min, lr_max = (float(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (0.01, 0.1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
if sampler_name == "tpe":
    sampler = optuna.samplers.TPESampler(seed=seed)
elif sampler_name == "nsga2":
    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
else:
    sys.exit(f"unknown sampler {sampler_name!r}: expected tpe or nsga2")
study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
space = {
    "lambda": optuna.distributions.FloatDistribution(1e-7, 1e-4, log=True),
    "lr": optuna.distributions.FloatDistribution(lr_min, lr_max, log=True),
}
for _ in range(n):
    trial = study.ask(space)
    print(json.dumps(trial.params), flush=True)
    answer = json.loads(sys.stdin.readline())
    study.tell(trial, [answer["sparsity"], answer["val_accuracy"]])
