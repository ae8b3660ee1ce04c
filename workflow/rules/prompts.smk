rule train_prompt:
    """Train one soft prompt on one task (backbone frozen unless the method says otherwise)."""
    input:
        unpack(train_inputs),
    output:
        prompt=directory("results/{experiment}/prompts/{model}/{task}/{method}/L{length}/seed{seed}"),
    log:
        "logs/{experiment}/train_prompt/{model}/{task}/{method}/L{length}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/{experiment}/train_prompt/{model}/{task}/{method}/L{length}/seed{seed}.tsv"
    params:
        args=train_args,
        ticket=ticket_flag,
        checkpoints="results/{experiment}/checkpoints/{model}/{task}/{method}/L{length}/seed{seed}",
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt train_prompt --backbone {input.backbone:q} --data {input.world:q}/{wildcards.task} "
        "--out {output.prompt:q} --checkpoint-dir {params.checkpoints:q} --threads {threads} "
        "{params.ticket} {params.args} > {log:q} 2>&1"
