"""The engine side of the GIMP plug-in: a persistent per-user worker that keeps models loaded.

Start it with ``python -m core.worker`` (the plug-in does this on first use); see
``core.worker.server`` for the socket server and ``core.worker.engine`` for the requests.
"""
