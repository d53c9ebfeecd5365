"""The motion data: the dataset cache built from BVH archives, captions, and the prompt lists."""
