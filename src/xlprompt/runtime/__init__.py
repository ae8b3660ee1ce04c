"""Runtime: atomic file writes, checkpoints, run metadata, logging and progress, the stages' CLI helpers,
GPU claims, and the defaults of every setting (:mod:`xlprompt.runtime.settings`). Imports nothing else of xlprompt."""
