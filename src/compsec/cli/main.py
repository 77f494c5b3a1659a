"""Entry point of the ``compsec`` command.

Exit codes used by every verb: 0 clean / ok, 1 findings, 2 error (one line on stderr, no traceback unless
``--debug``).  Verbs live in sibling modules and register themselves on :data:`app` in :func:`_register_verbs`.
"""

from __future__ import annotations

import sys

import typer

from compsec import __version__
from compsec.errors import CompsecError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

app = typer.Typer(
    name="compsec",
    help="Security of compressed neural networks: is the compressed model as safe as the one you evaluated?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state: dict = {"debug": False, "command": None}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"compsec {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def _register_verbs() -> None:
    from compsec.cli import verbs  # noqa: F401  (each verb module registers itself on ``app``)


def _command():
    """The click command behind :data:`app`, built once per process (typer rebuilds it on every call)."""
    if _state["command"] is None:
        _register_verbs()
        _state["command"] = typer.main.get_command(app)
    return _state["command"]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used by tests, without a subprocess)."""
    command = _command()
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        result = command(args=args, prog_name="compsec", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except SystemExit as done:
        return int(done.code or 0)
    except typer.Abort:
        return _fail(RuntimeError("aborted"))
    except (CompsecError, OSError, ValueError) as err:
        return _fail(err)
    except RecursionError as err:  # a parser met input nested too deeply; readers name the file themselves
        return _fail(ValueError(f"input nested too deeply to parse ({err}); check the files given"))
    except Exception as err:  # noqa: BLE001  (the CLI's last line of defence: one line, exit 2)
        if _is_usage_error(err):  # typer vendors click: its exceptions carry format_message() and exit_code
            return _usage_error(err)
        return _fail(err, unexpected=True)
    return result if isinstance(result, int) else EXIT_OK


def _is_usage_error(err: Exception) -> bool:
    return callable(getattr(err, "format_message", None)) and isinstance(getattr(err, "exit_code", None), int)


def _usage_error(err) -> int:
    """click's usage errors as one line (click prints usage, a hint and a box over several lines)."""
    context = getattr(err, "ctx", None)
    command = context.command_path if context is not None else "compsec"
    message = " ".join(str(err.format_message()).split()) or type(err).__name__
    print(f"error: {message} (see '{command} --help')", file=sys.stderr)
    return EXIT_ERROR


def _fail(err: BaseException, unexpected: bool = False) -> int:
    if _state["debug"]:
        import traceback

        traceback.print_exception(err)
    prefix = "internal error: " if unexpected else "error: "
    message = " ".join(str(err).split()) or type(err).__name__
    print(prefix + message, file=sys.stderr)
    return EXIT_ERROR


def main() -> None:
    sys.exit(run())
