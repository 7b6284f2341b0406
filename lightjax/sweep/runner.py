"""Run a whole sweep in a workdir: plan, train group by group, one results table, resume.

Workdir layout::

    sweep.json        the sweep (base config + members); another sweep here is refused
    results.jsonl     one row per finished member (written as its group finishes)
    groups/groupNNN/  each group's orbax checkpoints (resume point)

Re-running the same command skips members already in ``results.jsonl`` and resumes an unfinished
group from its last checkpoint, so no member is trained twice.
"""
from __future__ import annotations

import json
import os

import time
from typing import Any

import jax
import numpy as np

from lightjax import cost
from lightjax.sweep import plan as plan_lib
from lightjax.sweep import table
from lightjax.sweep.group import GroupTrainer
from lightjax.sweep.spec import Sweep
from lightjax.train import experiment
from lightjax.train import step as step_lib
from lightjax.train import workdir as workdir_lib

def _prepare(sweep: Sweep, workdir: str) -> None:
    workdir_lib.claim(workdir, "sweep.json", sweep.to_json(), "sweep",
                      f"{workdir} holds another sweep; use a new --workdir (or the same sweep "
                      f"file to resume it)")


def finished_rows(workdir: str) -> dict[int, dict[str, Any]]:
    """``{member: row}`` of ``results.jsonl`` (empty before the first group finishes)."""
    path = os.path.join(workdir, "results.jsonl")
    if not os.path.exists(path):
        return {}
    return {row["member"]: row for row in table.load_rows(path)}


def _latency_ms(trainer: GroupTrainer, state: Any, repeats: int = 10) -> float:
    """Median eval-mode forward latency of member 0 at batch 1 on one local device (ms); pruned
    members are timed masked (the compact model's latency is ``benchmarks/pruning.py``'s)."""
    model, plugins = trainer.model, trainer.plugins
    one = trainer.member(state, 0)
    x = np.zeros(trainer.experiment.input_shape, np.float32)
    fwd = jax.jit(lambda s, x: model.apply(step_lib.model_variables(s, step_lib.eval_params(s),
                                                                    plugins), x,
                                           train=False))
    jax.block_until_ready(fwd(one, x))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fwd(one, x))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def describe_plan(sweep: Sweep, max_members: int | None = None) -> str:
    """The plan as text: groups, members, compiled programs, MACs per member."""
    configs = sweep.configs()
    groups = plan_lib.plan(sweep, max_members, configs)
    plan_lib.check(groups, configs)
    lines = [f"{len(sweep.members)} members in {len(groups)} groups, "
             f"{len({g.program for g in groups})} compiled programs "
             f"(traced per member: {', '.join(plan_lib.TRACED)})"]
    for g in groups:
        cfg = configs[g.members[0]]
        dataset = experiment.build_dataset(cfg)
        model = experiment.build_model(cfg, dataset)
        report = cost.count(model, (1, *dataset.image_shape))
        static = ", ".join(f"{k}={v}" for k, v in g.static.items()) or "(base config)"
        lines.append(f"  {g.name}: {len(g.members)} members {list(g.members)}  program "
                     f"{g.program}  {static}  {report.macs:,} MACs  {report.params:,} params")
    return "\n".join(lines)


def run(sweep: Sweep, workdir: str, max_members: int | None = None, progress: bool = True,
        max_steps: int | None = None) -> list[dict[str, Any]]:
    """Run (or resume) ``sweep`` in ``workdir``; returns the results rows in member order.

    ``max_steps`` stops each unfinished group after that many steps (as a killed run would).
    """
    configs = sweep.configs()
    groups = plan_lib.plan(sweep, max_members, configs)
    plan_lib.check(groups, configs)  # bad member settings fail here, before anything is written
    _prepare(sweep, workdir)
    done = finished_rows(workdir)
    todo = [g for g in groups if not all(m in done for m in g.members)]
    bar = None
    if progress and jax.process_index() == 0:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(sweep.members), initial=len(sweep.members) - sum(
            len(g.members) for g in todo), unit="member", dynamic_ncols=True)
    try:
        for g in todo:
            trainer = GroupTrainer([configs[m] for m in g.members])
            result = trainer.train(os.path.join(workdir, "groups", g.name), max_steps=max_steps,
                                   progress=progress,
                                   label=f"{g.name}: {len(g.members)} members")
            if not result["finished"]:
                continue
            latency = _latency_ms(trainer, result["state"])
            rows = []
            for m, metrics in zip(g.members, result["members"]):
                rows.append({"member": m, "config": sweep.members[m], "group": g.name,
                             "task": trainer.task.name,
                             "params": trainer.experiment.cost.params,
                             "macs": trainer.experiment.cost.macs, **metrics,
                             "latency_ms": round(latency, 4),
                             "seconds": round(result["seconds"], 2),
                             "members_in_group": len(g.members),
                             "mesh": dict(trainer.mesh.shape),
                             "processes": jax.process_count()})
            if jax.process_index() == 0:
                with open(os.path.join(workdir, "results.jsonl"), "a") as f:
                    for row in rows:
                        f.write(json.dumps(row, default=list) + "\n")
            done.update({r["member"]: r for r in rows})
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    return [done[m] for m in sorted(done)]


#: extra columns shown per task besides its primary metric
_SECONDARY = {"top1": "top5", "miou": "pixel_acc"}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as text: status, the task's primary (and one secondary) metric, loss, cost."""
    metric = table.metric_of(rows)
    second = _SECONDARY.get(metric)
    head = f"{'member':>6}  {'status':<9} {metric:>7} " + (f"{second:>9} " if second else "") + \
           f"{'loss':>8} {'params':>10} {'MACs':>12} {'ms':>7} {'s':>6}  config"
    lines = [head]
    for r in rows:
        extra = f"{100 * r[second]:>8.2f}% " if second and second in r else \
            (f"{'':>9} " if second else "")
        lines.append(f"{r['member']:>6}  {r['status']:<9} {100 * r[metric]:>6.2f}% {extra}"
                     f"{r['loss']:>8.4f} {r['params']:>10,} "
                     f"{r['macs']:>12,} {r['latency_ms']:>7.3f} {r['seconds']:>6.1f}  "
                     f"{json.dumps(r['config'])}")
    return "\n".join(lines)


