"""Trainers: compiled training steps for each model family."""
