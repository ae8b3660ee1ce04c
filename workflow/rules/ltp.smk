rule finetune_mlm:
    """LTP step 1: fine-tuning of the backbone on unlabeled text (theta_MLM), with its family's objective."""
    input:
        backbone="resources/models/{model}",
        world=f"resources/data/{WORLD}",
    output:
        model=directory("results/{experiment}/mlm/{model}"),
    log:
        "logs/{experiment}/finetune_mlm/{model}.log",
    benchmark:
        "benchmarks/runs/{experiment}/finetune_mlm/{model}.tsv"
    # It heads the ltp chain (fine-tuning, ticket, ltp prompts) and needs PRETRAIN_THREADS cores at
    # once: first in line when the backbone is ready, or one-core jobs keep taking the cores it waits
    # for and push the ltp chain to the end of the run. Snakemake starts the set of ready jobs with
    # the largest summed priority, so 3 beats two of SPoT's chain (priority 1 each) on 2 cores.
    priority: 3
    conda:
        "../envs/xlprompt.yaml"
    threads: PRETRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=lambda wildcards: memory_mb(wildcards.model, "trained_float32", base_mb=4000),
        runtime=60,
    params:
        text=finetune_text_files,
        args=finetune_args,
        checkpoints="results/{experiment}/checkpoints/mlm/{model}",
    shell:
        "python -m xlprompt finetune_mlm --backbone {input.backbone:q} --text {params.text} "
        "--out {output.model:q} --checkpoint-dir {params.checkpoints:q} --threads {threads} "
        "{params.args} > {log:q} 2>&1"


rule select_ticket:
    """LTP steps 2-3: the winning ticket, the top p of |theta_MLM - theta_0|."""
    input:
        backbone="resources/models/{model}",
        finetuned="results/{experiment}/mlm/{model}",
    output:
        ticket=directory("results/{experiment}/tickets/{model}/{ticket}"),
    log:
        "logs/{experiment}/select_ticket/{model}/{ticket}.log",
    benchmark:
        "benchmarks/runs/{experiment}/select_ticket/{model}/{ticket}.tsv"
    priority: 3  # the ltp prompts wait for it (see finetune_mlm)
    conda:
        "../envs/xlprompt.yaml"
    resources:
        mem_mb=lambda wildcards: memory_mb(wildcards.model, "float32x3", base_mb=4000),
    params:
        args=ticket_args,
    shell:
        "python -m xlprompt select_ticket --backbone {input.backbone:q} --finetuned {input.finetuned:q} "
        "--out {output.ticket:q} {params.args} > {log:q} 2>&1"
