"""The project: a run's state on disk (store, checkpoints), its lock (one writer at a time), the checks made
before a run writes anything (checks), and the provenance every video carries. Only this package
knows the project's files; the rest of musivid uses the names below."""
from .lock import LOCK, locked
from .provenance import UNTRAINED_NOTE, model_names, settings_digest, video_metadata
from .checkpoints import Checkpoint, read_checkpoint, write_checkpoint
from .store import (FILES, INDEX, NOT_LATENT, VERSION, Chosen, InputFile, LatentInfo, Project, SavedLatent, default_dir,
                    index_file, is_project, latent_key, latent_settings)

__all__ = ["LOCK", "locked", "UNTRAINED_NOTE", "model_names", "settings_digest", "video_metadata", "FILES", "INDEX",
           "NOT_LATENT", "VERSION", "Checkpoint", "Chosen", "InputFile", "LatentInfo", "Project", "SavedLatent",
           "default_dir", "index_file", "is_project", "latent_key", "latent_settings", "read_checkpoint",
           "write_checkpoint"]
