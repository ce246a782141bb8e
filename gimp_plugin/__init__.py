"""Tinct for GIMP 3: the plug-in folder(s) and the installer used by ``install.py``."""
