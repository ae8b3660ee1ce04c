rule evaluate:
    """Evaluate every trained prompt of one task on the test split of every evaluation language,
    in one process: one backbone load and one tokenisation serve all prompts."""
    input:
        prompts=[f"results/{{experiment}}/prompts/{{model}}/{{task}}/{run}" for run in TASK_RUNS],
        backbone="resources/models/{model}",
        world=f"resources/data/{WORLD}",
    output:
        metrics=[f"results/{{experiment}}/metrics/{{model}}/{{task}}/{run}.json" for run in TASK_RUNS],
        predictions=[f"results/{{experiment}}/predictions/{{model}}/{{task}}/{run}.parquet" for run in TASK_RUNS],
    log:
        "logs/{experiment}/evaluate/{model}/{task}.log",
    benchmark:
        "benchmarks/runs/{experiment}/evaluate/{model}/{task}.tsv"
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=lambda wildcards: memory_mb(wildcards.model, "two_copies"),
        runtime=15,
    params:
        args=eval_args,
        dtype=lambda wildcards: dtype_flag(wildcards.model),
    shell:
        "python -m xlprompt evaluate --prompt {input.prompts:q} --backbone {input.backbone:q} "
        "--data {input.world:q}/{wildcards.task} --out {output.metrics:q} --predictions {output.predictions:q} "
        "--threads {threads} {params.dtype} "
        "{params.args} > {log:q} 2>&1"
