"""The ``compsec`` command line: one verb per capability, each a thin wrapper over library functions."""
