"""xlprompt: cross-lingual soft-prompt transfer research, as a Snakemake workflow.

The library computes; the workflow (``workflow/rules``) only wires its stages together.
Each stage is a module under :mod:`xlprompt.stages` with ``main(argv)``, run as
``python -m xlprompt <stage> ...``.
"""

__version__ = "0.1.0"
