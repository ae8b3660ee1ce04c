"""Data: the data-set contract (``{lang}/{split}.parquet`` and ``labels.json``), the generated world, the Hub
and local sources that fill the contract, and tokenisation. Imports :mod:`xlprompt.runtime` only."""
