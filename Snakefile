# xlprompt: cross-lingual soft-prompt transfer, as one graph of jobs.
# Table of contents only; every rule lives in workflow/rules/, everything that computes in
# src/xlprompt/. Run:  snakemake --cores all        (config/config.yaml, the offline demo)
#                      snakemake --cores all --configfile config/smoke.yaml

from snakemake.utils import min_version

min_version("9.0")


# The HTML report's front page (snakemake --report; make report): the experiment, its config and
# how to read each category of results.
report: "workflow/report/workflow.rst"


# The demo config, unless one was given (--configfile replaces it instead of merging into
# it, so no key of the demo leaks into another experiment).
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbone.smk"
include: "workflow/rules/ltp.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/spot.smk"
include: "workflow/rules/aggregate.smk"


# Every table and figure of the configured experiment (a comment, not a docstring: snakefmt 2.1 would
# move a docstring below default_target, where it no longer parses).
rule all:
    default_target: True
    input:
        all_targets,
