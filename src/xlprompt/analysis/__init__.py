"""Analysis: evaluation, metrics and statistics, neurons (ON), SPoT's similarities and retrieval, correlation,
the tidy tables, the headline and the figures' shared order. Imports runtime, data, models and methods."""
