"""Named palettes: small ab histograms on the step-10 grid (``core.reference``), one JSON file each.

Made by ``python -m core.palettes.build`` from the training part of ``../shared/data/documents``.
"""
