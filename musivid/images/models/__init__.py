"""Frozen model wrappers (CLIP, BigGAN-deep) and the weight registry."""
