"""xlprompt: cross-lingual soft-prompt transfer research, as a Snakemake workflow.

The library computes; the workflow (``workflow/rules``) only wires its stages together. It is layered, and a
layer imports only the ones before it (``tests/test_layout.py`` walks the imports):

- :mod:`xlprompt.runtime`: files, checkpoints, metadata, logging, CLI helpers, devices, every default;
- :mod:`xlprompt.data`: the data contract, the generated world, Hub and local sources, assembling, tokenisation;
- :mod:`xlprompt.models`: backbones (loading, Hub download, the tiny one's pretraining), families, length limits,
  the prompted model, predictions, language-model training, where it computes;
- :mod:`xlprompt.methods`: the training loop, each method's trainable set, LTP, projector, artifacts;
- :mod:`xlprompt.analysis`: evaluation, statistics, neurons, SPoT's similarities, tables and figures;
- :mod:`xlprompt.config`: the experiment config's checks, loading and reference;
- :mod:`xlprompt.stages`: one module per rule with ``main(argv)``, run as ``python -m xlprompt <stage> ...``:
  it parses its arguments and calls one library function, then writes what it returns (or the function writes
  its outputs itself: training, tickets, backbones, figures).
"""

__version__ = "0.1.0"
