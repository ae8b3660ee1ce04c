rule generate_world:
    """Generate the offline multilingual world: every task in every language, and a corpus."""
    output:
        world=directory("resources/data/{world}"),
    log:
        "logs/generate_world/{world}.log",
    benchmark:
        "benchmarks/runs/generate_world/{world}.tsv"
    params:
        spec=world_spec,
        code=world_code_version,
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt generate_world --spec {params.spec:q} --out {output.world:q} > {log:q} 2>&1"
