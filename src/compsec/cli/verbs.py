"""Imports every verb module so that each registers itself on ``compsec.cli.main.app``.

Add one line per verb module; keep verb modules thin (parse options, call the library, print, exit code).
"""
