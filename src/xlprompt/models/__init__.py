"""Models: loading a backbone, its family's conventions, the prompted model, a task as a model reads it,
predictions, masked-LM training, the tiny offline backbone, and where it computes. Imports runtime and data."""
