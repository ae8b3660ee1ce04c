"""Model shapes the step benchmarks share: the demo's tiny backbone and XLM-R base's width.

XLM-R base is 12 x 768 with a 250,002-token vocabulary; depth and vocabulary are cut so that
a step fits a 2-core CPU, while the width (what sets the per-token cost) stays.
"""

SHAPES = {
    "tiny (demo: 3 x 128)": dict(num_hidden_layers=3, hidden_size=128, num_attention_heads=4, intermediate_size=512,
                                 vocab_size=800),
    "xlm-r-base width (2 x 768, vocab cut to 8k)": dict(num_hidden_layers=2, hidden_size=768, num_attention_heads=12,
                                                       intermediate_size=3072, vocab_size=8000),
}
