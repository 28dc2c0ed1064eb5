"""Stages that make the pictures: the models (models/: registry, CLIP, BigGAN, loading, the
ModelCache), the batched latent optimizer (optimize), its cutouts, and the one-prompt reference
loop the benchmark compares against (reference)."""
