rule train_prompt:
    """Train one prompt with a method that changes backbone weights (full_ft, ltp, lora, bitfit) or puts
    prefixes into its layers (deep_prompt): a job each."""
    input:
        unpack(train_inputs),
    output:
        prompt=directory("results/{experiment}/prompts/{model}/{task}/{method}/L{length}/seed{seed}"),
    log:
        "logs/{experiment}/train_prompt/{model}/{task}/{method}/L{length}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/{experiment}/train_prompt/{model}/{task}/{method}/L{length}/seed{seed}.tsv"
    wildcard_constraints:
        method=_alternatives([m for m in METHODS if not shares_backbone(m)] or ["no-method"]),
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=train_memory_mb,
        runtime=30,
    params:
        args=train_args,
        dtype=lambda wildcards: dtype_flag(wildcards.model),
        ticket=ticket_flag,
        checkpoints="results/{experiment}/checkpoints/{model}/{task}/{method}/L{length}/seed{seed}",
    shell:
        "python -m xlprompt train_prompt --backbone {input.backbone:q} --data {input.world:q}/{wildcards.task} "
        "--out {output.prompt:q} --checkpoint-dir {params.checkpoints:q} --threads {threads} "
        "{params.ticket} {params.dtype} {params.args} > {log:q} 2>&1"


# Frozen-backbone prompts (spt, the controls, SPoT's sources and targets): a job per group of
# prompts that share a backbone, prompt length and task (common.smk: train_groups).
for group in train_groups():

    rule:
        name:
            group.name
        input:
            backbone=f"resources/models/{group.model}",
            world=f"resources/data/{WORLD}",
            sources=group.sources,
        output:
            [directory(path) for path in group.outputs],
        log:
            group.log,
        benchmark:
            group.benchmark
        # SPoT's chain (sources, targets, their evaluation, tables) is the graph's longest: its jobs
        # go first among those ready, so that the methods grid fills the other cores meanwhile and
        # the last minutes are not one job after another.
        priority: 1
        conda:
            "../envs/xlprompt.yaml"
        threads: THREADS
        resources:
            gpu=1,
            mem_mb=memory_mb(group.model),
            runtime=60,
        params:
            runs=group.flags,
            dtype=dtype_flag(group.model),
        shell:
            "python -m xlprompt train_prompt --backbone {input.backbone:q} --threads {threads} {params.dtype} "
            "{params.runs} > {log:q} 2>&1"
