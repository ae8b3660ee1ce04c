"""Analysis: evaluation of prompts and of SPoT's transfers (metrics documents, predictions), metrics and
statistics, activated neurons (ON) and neuron masking, SPoT's similarities and retrieval, correlation, training
curves, the tidy tables, the headline and every figure. Imports runtime, data, models and methods."""
