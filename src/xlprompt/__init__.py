"""xlprompt: cross-lingual soft-prompt transfer research, as a Snakemake workflow.

The library computes; the workflow (``workflow/rules``) only wires its stages together. It is layered, and a
layer imports only the ones before it (``tests/test_layout.py`` walks the imports):

- :mod:`xlprompt.runtime`: files, checkpoints, metadata, logging, CLI helpers, devices, every default;
- :mod:`xlprompt.data`: the data contract, the generated world, Hub and local sources, tokenisation;
- :mod:`xlprompt.models`: backbones, families, the prompted model, predictions, masked-LM training;
- :mod:`xlprompt.methods`: the training loop, each method's trainable set, LTP, projector, artifacts;
- :mod:`xlprompt.analysis`: evaluation, statistics, neurons, SPoT's similarities, tables and figures;
- :mod:`xlprompt.config`: the experiment config's checks, loading and reference;
- :mod:`xlprompt.stages`: one module per rule with ``main(argv)``, run as ``python -m xlprompt <stage> ...``:
  it parses its arguments, calls one library function and writes what it returns.
"""

__version__ = "0.1.0"
