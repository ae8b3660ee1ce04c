rule evaluate:
    """Evaluate one trained prompt on the test split of every evaluation language."""
    input:
        prompt="results/{experiment}/prompts/{model}/{task}/{method}/L{length}/seed{seed}",
        backbone="resources/models/{model}",
        world=f"resources/data/{WORLD}",
    output:
        metrics="results/{experiment}/metrics/{model}/{task}/{method}/L{length}/seed{seed}.json",
    log:
        "logs/{experiment}/evaluate/{model}/{task}/{method}/L{length}/seed{seed}.log",
    params:
        args=eval_args,
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt evaluate --prompt {input.prompt:q} --backbone {input.backbone:q} "
        "--data {input.world:q}/{wildcards.task} --out {output.metrics:q} --threads {threads} "
        "{params.args} > {log:q} 2>&1"
