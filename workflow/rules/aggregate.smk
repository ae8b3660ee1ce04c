rule aggregate:
    """Collect every metrics.json into tidy tables (the only input of the figures), with intervals
    and paired comparisons from the per-example predictions."""
    input:
        metrics=metrics_files,
        predictions=predictions_files,
        prompts=grid_prompts,
        languages=f"resources/data/{WORLD}",
    output:
        per_language=report(
            "results/{experiment}/tables/per_language.csv",
            category="Tables",
            caption="../report/table_per_language.rst",
        ),
        summary=report(
            "results/{experiment}/tables/summary.csv", category="Tables", caption="../report/table_summary.rst"
        ),
        languages="results/{experiment}/tables/languages.csv",
        distance="results/{experiment}/tables/distance_correlation.csv",
        tasks="results/{experiment}/tables/tasks.csv",
        comparisons=report(
            "results/{experiment}/tables/comparisons.csv", category="Tables", caption="../report/table_comparisons.rst"
        ),
        methods=report(
            "results/{experiment}/tables/methods.csv", category="Tables", caption="../report/table_methods.rst"
        ),
    log:
        "logs/{experiment}/aggregate.log",
    benchmark:
        "benchmarks/runs/{experiment}/aggregate.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        folder=folder_of_first_output,
        methods=METHODS,
    shell:
        "python -m xlprompt aggregate --metrics {input.metrics:q} --predictions {input.predictions:q} "
        "--prompts {input.prompts:q} "
        "--methods {params.methods:q} --languages {input.languages:q}/languages.json "
        "--out {params.folder:q} > {log:q} 2>&1"


rule plot:
    """Draw the figures from the tables."""
    input:
        summary="results/{experiment}/tables/summary.csv",
        languages="results/{experiment}/tables/languages.csv",
        tasks="results/{experiment}/tables/tasks.csv",
        comparisons="results/{experiment}/tables/comparisons.csv",
        methods="results/{experiment}/tables/methods.csv",
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
        comparisons=[
            report(
                f"results/{{experiment}}/figures/comparisons_{task}.png",
                category="Methods",
                subcategory=task,
                caption="../report/comparisons.rst",
                labels={"figure": "paired differences between methods", "task": task},
            )
            for task in TASKS
        ],
        methods=report(
            "results/{experiment}/figures/methods.png",
            category="Methods",
            subcategory="all tasks",
            caption="../report/methods.rst",
            labels={"figure": "accuracy against trainable parameters", "task": "all"},
        ),
    log:
        "logs/{experiment}/plot.log",
    benchmark:
        "benchmarks/runs/{experiment}/plot.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        tables=folder_of_first_input,
        folder=folder_of_first_output,
    shell:
        "python -m xlprompt plot --tables {params.tables:q} --out {params.folder:q} > {log:q} 2>&1"


rule plot_curves:
    """Training curves of the main grid's prompts (their train_log.jsonl): a table and a figure per task."""
    input:
        prompts=grid_prompts,
    output:
        figures=[
            report(
                f"results/{{experiment}}/figures/training_{task}.png",
                category="Training",
                subcategory=task,
                caption="../report/training.rst",
                labels={"figure": "validation loss and accuracy against step", "task": task},
            )
            for task in TASKS
        ],
        table="results/{experiment}/tables/training_curves.csv",
    log:
        "logs/{experiment}/plot_curves.log",
    benchmark:
        "benchmarks/runs/{experiment}/plot_curves.tsv"
    conda:
        "../envs/xlprompt.yaml"
    params:
        model=MODEL,
        folder=folder_of_first_output,
    shell:
        "python -m xlprompt plot_curves --prompt {input.prompts:q} --model {params.model:q} "
        "--table {output.table:q} --out {params.folder:q} > {log:q} 2>&1"
