"""Measuring: the optimizer's throughput against the one-prompt reference (bench), and a step's
counted cost on the meta device (census)."""
