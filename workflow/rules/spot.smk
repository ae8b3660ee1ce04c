# SPoT (Vu et al. 2022): evaluation of the target prompts started from each source and from the
# baselines (also zero-shot), prompt similarity, transfer and retrieval tables. The source and
# target prompts train in groups (prompts.smk).


rule evaluate_transfer:
    """Every prompt of one target (all inits and seeds) and every source zero-shot, one process."""
    input:
        unpack(evaluate_transfer_inputs),
    output:
        metrics="results/{experiment}/transfer_metrics/{model}/{target}/L{length}.json",
        predictions="results/{experiment}/transfer_predictions/{model}/{target}/L{length}.parquet",
    log:
        "logs/{experiment}/evaluate_transfer/{model}/{target}/L{length}.log",
    benchmark:
        "benchmarks/runs/{experiment}/evaluate_transfer/{model}/{target}/L{length}.tsv"
    priority: 1  # on SPoT's chain, the graph's longest (see the training groups, prompts.smk)
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=lambda wildcards: memory_mb(wildcards.model),
        runtime=30,
    params:
        dtype=lambda wildcards: dtype_flag(wildcards.model),
        args=evaluate_transfer_args,
    shell:
        "python -m xlprompt evaluate_transfer --backbone {input.backbone:q} --data {input.world:q}/{wildcards.target} "
        "--out {output.metrics:q} --predictions {output.predictions:q} --threads {threads} {params.dtype} "
        "{params.args} > {log:q} 2>&1"


rule prompt_activations:
    """Activated neurons (FFN, after the non-linearity) of every source and target prompt, one batched pass."""
    input:
        prompts=lambda wildcards: list(activation_prompts(wildcards).values()),
        backbone=f"resources/models/{MODEL}",
        world=f"resources/data/{WORLD}",
    output:
        activations=f"results/{{experiment}}/activations/{MODEL}/activations.safetensors",
    log:
        "logs/{experiment}/prompt_activations.log",
    benchmark:
        "benchmarks/runs/{experiment}/prompt_activations.tsv"
    priority: 1  # on SPoT's chain (see evaluate_transfer)
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=memory_mb(MODEL),
        runtime=15,
    params:
        dtype=dtype_flag(MODEL),
        prompts=lambda wildcards: " ".join(activation_prompts(wildcards)),
        args=activation_args,
    shell:
        "python -m xlprompt prompt_activations --backbone {input.backbone:q} --prompts {params.prompts} "
        "--out {output.activations:q} --threads {threads} {params.dtype} {params.args} > {log:q} 2>&1"


rule similarity:
    """Similarity of every source and target: SPoT's task embeddings, the prompts, activated neurons (ON)."""
    input:
        sources=lambda wildcards: list(similarity_prompts(wildcards)[0].values()),
        targets=lambda wildcards: list(similarity_prompts(wildcards)[1].values()),
        activations=f"results/{{experiment}}/activations/{MODEL}/activations.safetensors",
    output:
        table="results/{experiment}/tables/similarity.csv",
    log:
        "logs/{experiment}/similarity.log",
    benchmark:
        "benchmarks/runs/{experiment}/similarity.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        sources=lambda wildcards: " ".join(similarity_prompts(wildcards)[0]),
        targets=lambda wildcards: " ".join(similarity_prompts(wildcards)[1]),
        window=NEURONS.get("window", NeuronSettings.window),
    shell:
        "python -m xlprompt similarity --sources {params.sources} --targets {params.targets} "
        "--activations {input.activations:q} --window {params.window} --out {output.table:q} > {log:q} 2>&1"


rule transfer_tables:
    """transfer.csv (every run, gain over random init) and retrieval.csv (SPoT's Table 3)."""
    input:
        results=transfer_metric_files,
        predictions=transfer_prediction_files,
        similarity="results/{experiment}/tables/similarity.csv",
    output:
        transfer=report(
            "results/{experiment}/tables/transfer.csv", category="Tables", caption="../report/table_transfer.rst"
        ),
        retrieval="results/{experiment}/tables/retrieval.csv",
        comparisons=report(
            "results/{experiment}/tables/transfer_comparisons.csv",
            category="Tables",
            caption="../report/table_transfer_comparisons.rst",
        ),
    log:
        "logs/{experiment}/transfer_tables.log",
    benchmark:
        "benchmarks/runs/{experiment}/transfer_tables.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        folder=folder_of_first_output,
    shell:
        "python -m xlprompt transfer_tables --results {input.results:q} --predictions {input.predictions:q} "
        "--similarity {input.similarity:q} "
        "--out {params.folder:q} > {log:q} 2>&1"


rule plot_transfer:
    """The source x target matrix of transfer gains."""
    input:
        transfer="results/{experiment}/tables/transfer.csv",
    output:
        figure=report(
            "results/{experiment}/figures/transfer_gain.png",
            category="Transfer",
            caption="../report/transfer.rst",
            labels={"figure": "transfer gain (SPoT)"},
        ),
    log:
        "logs/{experiment}/plot_transfer.log",
    benchmark:
        "benchmarks/runs/{experiment}/plot_transfer.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        train_language=TARGET_LANGUAGE,
    shell:
        "python -m xlprompt plot_transfer --transfer {input.transfer:q} --train-language {params.train_language} "
        "--out {output.figure:q} > {log:q} 2>&1"


rule train_projector:
    """Cross-model transfer: a projector from the main backbone's source prompt into the cross model."""
    input:
        unpack(projector_inputs),
    output:
        projector=directory("results/{experiment}/projectors/{model}/{source_name}/L{length}/seed{seed}"),
    log:
        "logs/{experiment}/train_projector/{model}/{source_name}/L{length}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/{experiment}/train_projector/{model}/{source_name}/L{length}/seed{seed}.tsv"
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=lambda wildcards: memory_mb(wildcards.model),
        runtime=30,
    params:
        dtype=lambda wildcards: dtype_flag(wildcards.model),
        data=projector_data,
        args=projector_args,
    shell:
        "python -m xlprompt train_projector --source {input.source:q} --backbone {input.backbone:q} "
        "--data {params.data} --out {output.projector:q} --threads {threads} {params.dtype} {params.args} "
        "> {log:q} 2>&1"


rule project_prompt:
    """Cross-model transfer: a target's prompt of the main backbone, mapped into the cross model."""
    input:
        unpack(project_inputs),
    output:
        prompt=directory("results/{experiment}/projected/{model}/{target}/L{length}/seed{seed}"),
    log:
        "logs/{experiment}/project_prompt/{model}/{target}/L{length}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/{experiment}/project_prompt/{model}/{target}/L{length}/seed{seed}.tsv"
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt project_prompt --projector {input.projector:q} --source {input.source:q} "
        "--backbone {input.backbone:q} --out {output.prompt:q} > {log:q} 2>&1"


rule neuron_masking:
    """Each source's own task with its most activated neurons switched off (and as many random ones)."""
    input:
        prompts=lambda wildcards: list(similarity_prompts(wildcards)[0].values()),
        activations=f"results/{{experiment}}/activations/{MODEL}/activations.safetensors",
        backbone=f"resources/models/{MODEL}",
        world=f"resources/data/{WORLD}",
    output:
        table="results/{experiment}/tables/neuron_masking.csv",
    log:
        "logs/{experiment}/neuron_masking.log",
    benchmark:
        "benchmarks/runs/{experiment}/neuron_masking.tsv"
    priority: 1  # on SPoT's chain (see evaluate_transfer)
    conda:
        "../envs/xlprompt.yaml"
    threads: THREADS
    resources:
        gpu=1,
        mem_mb=memory_mb(MODEL),
        runtime=15,
    params:
        dtype=dtype_flag(MODEL),
        prompts=lambda wildcards: " ".join(similarity_prompts(wildcards)[0]),
        share=NEURONS.get("mask_share", NeuronSettings.mask_share),
        languages=eval_args,
    shell:
        "python -m xlprompt neuron_masking --backbone {input.backbone:q} --data-root {input.world:q} "
        "--prompts {params.prompts} --activations {input.activations:q} --share {params.share} {params.languages} "
        "--out {output.table:q} --threads {threads} {params.dtype} > {log:q} 2>&1"


rule correlate:
    """Spearman and Pearson correlation (bootstrap intervals) of every similarity with transfer."""
    input:
        similarity="results/{experiment}/tables/similarity.csv",
        transfer="results/{experiment}/tables/transfer.csv",
    output:
        table=report(
            "results/{experiment}/tables/correlation.csv", category="Tables", caption="../report/table_correlation.rst"
        ),
    log:
        "logs/{experiment}/correlate.log",
    benchmark:
        "benchmarks/runs/{experiment}/correlate.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        train_language=TARGET_LANGUAGE,
    shell:
        "python -m xlprompt correlate --similarity {input.similarity:q} --transfer {input.transfer:q} "
        "--train-language {params.train_language} --out {output.table:q} > {log:q} 2>&1"


rule plot_similarity:
    """Similarity against transfer (one panel per measure) and the neuron masking check."""
    input:
        similarity="results/{experiment}/tables/similarity.csv",
        transfer="results/{experiment}/tables/transfer.csv",
        correlation="results/{experiment}/tables/correlation.csv",
        masking="results/{experiment}/tables/neuron_masking.csv",
    output:
        scatter=report(
            "results/{experiment}/figures/similarity_vs_transfer.png",
            category="Similarity",
            caption="../report/similarity.rst",
            labels={"figure": "similarity vs transfer"},
        ),
        masking=report(
            "results/{experiment}/figures/neuron_masking.png",
            category="Similarity",
            caption="../report/masking.rst",
            labels={"figure": "neuron masking"},
        ),
    log:
        "logs/{experiment}/plot_similarity.log",
    benchmark:
        "benchmarks/runs/{experiment}/plot_similarity.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        tables=folder_of_first_input,
        folder=folder_of_first_output,
        train_language=TARGET_LANGUAGE,
    shell:
        "python -m xlprompt plot_similarity --tables {params.tables:q} --train-language {params.train_language} "
        "--out {params.folder:q} > {log:q} 2>&1"
