rule pretrain_backbone:
    """Train a tokenizer and pretrain the tiny XLM-R on the world's corpus (masked LM)."""
    input:
        world=f"resources/data/{WORLD}",
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/pretrain_backbone/{model}.log",
    benchmark:
        "benchmarks/runs/pretrain_backbone/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(PRETRAINED_MODELS or ["no-model"]),
    conda:
        "../envs/xlprompt.yaml"
    threads: PRETRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        args=pretrain_args,
        checkpoints="resources/checkpoints/{model}",
    shell:
        "python -m xlprompt pretrain_backbone --world {input.world:q} --out {output.model:q} "
        "--checkpoint-dir {params.checkpoints:q} --threads {threads} {params.args} > {log:q} 2>&1"


# The downloads need the network: they run where Snakemake runs (on a cluster, the login node),
# every other job on the compute nodes, offline.
localrules:
    download_backbone,


rule download_backbone:
    """Fetch a Hub backbone (safetensors, config, tokenizer) at its pinned revision."""
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/download_backbone/{model}.log",
    benchmark:
        "benchmarks/runs/download_backbone/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(HUB_MODELS or ["no-model"]),
    conda:
        "../envs/xlprompt.yaml"
    params:
        args=download_backbone_args,
        offline=HUB_OFFLINE,
    shell:
        "HF_HUB_OFFLINE={params.offline} python -m xlprompt download_backbone {params.args} --out {output.model:q} "
        "> {log:q} 2>&1"
