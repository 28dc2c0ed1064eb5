"""Work spread over devices: a pool of workers that each hold the models (workers), one song's
latents sharded over them (shard: a runner.Runner), and an album, one song per worker (batch)."""
