"""Stages that make the video: keyframes and the curves that move the picture (motion), the
per-frame latents (interpolate), frames to H.264 with the song (render), captions and their fonts,
and the storyboard."""
