"""The ``tinct_colorize`` GIMP plug-in; importable as a package so the worker shares its protocol module."""
