# The data folder resources/data/<name>/: generated offline (world:), or downloaded per task and
# assembled (data:). Exactly one of the two paths exists in a config's graph.
if DATA is None:

    rule generate_world:
        """Generate the offline multilingual world: every task in every language, and a corpus."""
        output:
            world=directory("resources/data/{world}"),
        log:
            "logs/generate_world/{world}.log",
        benchmark:
            "benchmarks/runs/generate_world/{world}.tsv"
        conda:
            "../envs/xlprompt.yaml"
        params:
            spec=world_spec,
            code=world_code_version,
        shell:
            "python -m xlprompt generate_world --spec {params.spec:q} --out {output.world:q} > {log:q} 2>&1"

else:

    localrules:
        download_dataset,  # on the submit host, with the network (as download_backbone)

    rule download_dataset:
        """Fetch one task's data (Hub data sets at pinned revisions, or local files) into the data contract."""
        output:
            directory("resources/downloads/{world}/{dataset}"),
        log:
            "logs/download_dataset/{world}/{dataset}.log",
        benchmark:
            "benchmarks/runs/download_dataset/{world}/{dataset}.tsv"
        conda:
            "../envs/xlprompt.yaml"
        params:
            sources=dataset_sources,
            offline=HUB_OFFLINE,
        shell:
            "HF_HUB_OFFLINE={params.offline} HF_DATASETS_OFFLINE={params.offline} "
            "python -m xlprompt download_dataset --sources {params.sources:q} "
            "--task {wildcards.dataset} --out {output:q} > {log:q} 2>&1"

    rule assemble_data:
        """One data folder for the experiment: every task, a corpus per training language, languages.json."""
        input:
            expand("resources/downloads/{{world}}/{dataset}", dataset=DATA_TASKS),
        output:
            directory("resources/data/{world}"),
        log:
            "logs/assemble_data/{world}.log",
        benchmark:
            "benchmarks/runs/assemble_data/{world}.tsv"
        conda:
            "../envs/xlprompt.yaml"
        params:
            args=assemble_args,
        shell:
            "python -m xlprompt assemble_data {params.args} --out {output:q} > {log:q} 2>&1"
