"""Models: loading a backbone and fetching one from the Hub, its family's conventions, length limits, the prompted
model, a task as a model reads it, predictions, language-model training (masked, causal, span corruption), the
tiny offline backbone and its pretraining, and where it computes. Imports runtime and data."""
