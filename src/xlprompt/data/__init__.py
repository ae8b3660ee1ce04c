"""Data: the data-set contract (``{lang}/{split}.parquet`` and ``labels.json``), the generated world and the
writer of its files, the Hub and local sources that fill the contract (read, converted and written as one
folder), assembling an experiment's tasks into one data folder, and tokenisation. Imports :mod:`xlprompt.runtime`
only."""
