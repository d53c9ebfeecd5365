"""Blender-side reading and writing of rigs and actions (thin: the math is in motioncore)."""
