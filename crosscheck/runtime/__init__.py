"""Where and how things run: precision modes, devices, meshes, and the one timing engine."""
