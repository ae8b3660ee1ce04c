rule aggregate:
    """Collect every metrics.json into tidy tables (the only input of the figures)."""
    input:
        metrics=metrics_files,
        languages=f"resources/data/{WORLD}",
    output:
        per_language=report("results/{experiment}/tables/per_language.csv", category="Tables",
                            caption="../report/table_per_language.rst"),
        summary=report("results/{experiment}/tables/summary.csv", category="Tables",
                       caption="../report/table_summary.rst"),
        languages="results/{experiment}/tables/languages.csv",
        distance="results/{experiment}/tables/distance_correlation.csv",
        tasks="results/{experiment}/tables/tasks.csv",
    log:
        "logs/{experiment}/aggregate.log",
    benchmark:
        "benchmarks/runs/{experiment}/aggregate.tsv"
    params:
        folder=folder_of_first_output,
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt aggregate --metrics {input.metrics:q} --languages {input.languages:q}/languages.json "
        "--out {params.folder:q} > {log:q} 2>&1"


rule plot:
    """Draw the figures from the tables."""
    input:
        summary="results/{experiment}/tables/summary.csv",
        languages="results/{experiment}/tables/languages.csv",
        tasks="results/{experiment}/tables/tasks.csv",
    output:
        # one subcategory per task: the heatmaps are the task's, the distance figure has all
        heatmaps=[
            report(
                f"results/{{experiment}}/figures/heatmap_{task}.png",
                category="Methods",
                subcategory=task,
                caption="../report/heatmap.rst",
                labels={"figure": "accuracy per method and language", "task": task},
            )
            for task in TASKS
        ],
        distance=report(
            "results/{experiment}/figures/accuracy_vs_distance.png",
            category="Methods",
            subcategory="all tasks",
            caption="../report/distance.rst",
            labels={"figure": "accuracy vs distance from English", "task": "all"},
        ),
    log:
        "logs/{experiment}/plot.log",
    benchmark:
        "benchmarks/runs/{experiment}/plot.tsv"
    params:
        tables=folder_of_first_input,
        folder=folder_of_first_output,
    conda:
        "../envs/xlprompt.yaml"
    shell:
        "python -m xlprompt plot --tables {params.tables:q} --out {params.folder:q} > {log:q} 2>&1"
