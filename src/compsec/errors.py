"""Exceptions that the CLI turns into exit code 2 with a one-line message.

Every message should say what is wrong *and* what to do next, e.g.
``"model.bin is a pickle file; compsec never unpickles weights. Convert it to safetensors first."``
"""


class CompsecError(Exception):
    """Base class: an error the user can fix (bad input, missing file, missing optional dependency)."""


class InputError(CompsecError):
    """A file, folder or argument the user gave is malformed, hostile or unsupported."""


class MissingDependencyError(CompsecError):
    """An optional backend is not installed; the message carries the ``pip install`` line to fix it."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = ""):
        fix = f"pip install 'compsec[{extra}]'" if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"optional dependency '{package}' is not installed{what}; install it with: {fix}")
        self.package = package


class ConfigMismatchError(CompsecError):
    """A resumed run was started with a different configuration than the log it would extend."""
