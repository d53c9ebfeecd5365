"""DynamicPose backend: data, model, engine, server, training and evaluation.

Uses torch; never imports bpy. Motion math comes from `motioncore`.
"""
__version__ = "0.1.0"
