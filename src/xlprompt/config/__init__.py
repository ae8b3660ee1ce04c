"""The experiment config: its checks before any job runs (read by the workflow), loading sections into
dataclasses, and the generated reference (``config/README.md``). Knows every layer below it; the stages may use it."""
