"""Methods: the training loop, each method's trainable set (spt, full_ft, ltp's tickets, lora, bitfit,
deep_prompt), LTP's fine-tuning (theta_MLM) and winning ticket, the projector for cross-model transfer, artifacts
and their PEFT export. Imports runtime, data and models."""
