"""Stages that read the song: decode it (audio), find its beat (rhythm), read the lyrics (lyrics),
place the lines in time (segments, timing) and align known words to the singing (alignment).
Pure transformations of typed values: nothing here knows the project or the order of a run."""
