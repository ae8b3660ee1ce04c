"""Every target in benchmarks/results.json, one line each: what was measured, the value, the
target and whether it is met (make bench prints this last).

    python benchmarks/summary.py
"""

from __future__ import annotations

import json

from record import RESULTS


def targets(node: object, path: tuple[str, ...] = ()) -> list[tuple[str, object, str, bool]]:
    """(where, value, target, met) of every measurement with a target, depth first."""
    if not isinstance(node, dict):
        return []
    if "target" in node and "met" in node:
        return [(" / ".join(path), node.get("ratio", node.get("value")), node["target"], node["met"])]
    return [row for key, child in node.items() for row in targets(child, (*path, key))]


def main() -> None:
    results = json.loads(RESULTS.read_text())
    rows = targets(results)
    width = max(len(where) for where, *_ in rows)
    print(f"{'measurement':<{width}}  {'value':>8}  {'target':<8}  met")
    for where, value, target, met in rows:
        print(f"{where:<{width}}  {value:>8}  {target:<8}  {'yes' if met else 'NO'}")
    gpu = results.get("gpu_spt_throughput", {})
    if not gpu.get("measured"):
        print(f"GPU spt throughput and MFU: not measured ({gpu.get('reason', 'run benchmarks/bench_gpu.py on a GPU')})")
    else:
        print(
            f"GPU spt throughput ({gpu['device']}, {gpu['layers']} x 768, batch {gpu['batch']} x {gpu['seq']}): "
            f"{gpu['tokens_per_s']:,.0f} tokens/s, {gpu['model_tflops_per_s']} TFLOP/s, MFU {gpu['mfu']:.1%}"
        )
    joint = results.get("joint_training_gpu")
    if joint is None:
        print(
            "GPU joint training step (8 prompts) / 8 one-prompt steps: not measured "
            "(run benchmarks/bench_joint.py --gpu)"
        )
    for shape, table in results.get("methods_step_and_memory", {}).items():  # measured, no targets
        cells = ", ".join(
            f"{method} {row['step_vs_full_ft']:.2f} / {row['memory_vs_full_ft']:.2f}"
            for method, row in table.items()
            if isinstance(row, dict)
        )
        print(f"step time / training memory against full_ft, {shape}: {cells}")
    for name, cost in results.get("gpu_paper_configs", {}).items():
        if isinstance(cost, dict):
            print(
                f"GPU cost of config/{name}.yaml ({results['gpu_paper_configs']['device']}): training "
                f"{cost['training_s'] / 60:.1f} min + evaluation {cost['evaluation_s'] / 60:.1f} min of compute"
            )


if __name__ == "__main__":
    main()
