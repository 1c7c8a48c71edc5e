"""The ``edgekit`` command: a thin click layer over the library.

Subcommands live in their own modules and are imported only when invoked, so ``edgekit --help``
and the device-side commands never pay for host-side imports (TensorFlow). Every
:class:`~edgekit.errors.EdgekitError` becomes one ``Error: ...`` line and its exit code.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

import click

from edgekit import __version__
from edgekit.errors import EdgekitError, one_line

# name -> (module, attribute, one-line help). The help is repeated here so that listing commands
# does not import them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "convert": ("edgekit.cli.convert", "convert", "Quantize a Keras model to int8 and compile it."),
    "compile": ("edgekit.cli.compile", "compile_", "Co-compile models to share one Edge TPU."),
    "classify": ("edgekit.cli.runtime", "classify", "Classify images with a bundle or .tflite."),
    "detect": ("edgekit.cli.detect", "detect", "Find objects in images with a detector."),
    "bench": ("edgekit.cli.runtime", "bench", "Measure inference latency on a device."),
    "doctor": ("edgekit.cli.doctor", "doctor", "Check this machine's Edge TPU setup."),
    "stack": ("edgekit.cli.stack", "stack", "Name the libedgetpu + interpreter pair to install."),
    "serve": ("edgekit.cli.serve", "serve", "Classify or detect on camera frames, nonstop."),
    "inspect": ("edgekit.cli.inspect", "inspect", "Show a model's layers, ops and TPU mapping."),
    "zoo": ("edgekit.cli.zoo", "zoo", "List and build Edge-TPU-friendly Keras models."),
    "train": ("edgekit.cli.train", "train", "Train a zoo classifier or detector on a dataset."),
    "keygen": ("edgekit.cli.fleet", "keygen", "Create a key pair for signing bundles."),
    "sign": ("edgekit.cli.fleet", "sign", "Sign every file of a bundle (edgekit.sig)."),
    "verify": ("edgekit.cli.fleet", "verify", "Check a bundle's signature."),
    "rollout": ("edgekit.cli.fleet", "rollout", "Ship a signed bundle to a fleet, canaries first."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("edgekit"):
                raise  # our own bug, not a missing optional dependency
            raise click.ClickException(
                f"`edgekit {name}` needs the Python package {e.name!r}, which is not installed "
                f"(pip install 'edgekit[{_extra_for(name)}]')"
            ) from None
        from edgekit.cli.examples import with_examples
        from edgekit.cli.params import refuse_empty_values

        # '' is never a path (it would mean ".") nor a value
        return with_examples(name, refuse_empty_values(command))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        restore = _terminate_like_ctrl_c()
        try:
            return super().invoke(ctx)
        except EdgekitError as e:
            click.echo(f"Error: {one_line(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except click.ClickException as e:  # a usage error quoting a file name: one line too
            e.message = one_line(e.message)
            raise
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, _Terminated) else signal.SIGINT
            words = {signal.SIGINT: "Interrupted.", signal.SIGHUP: "Hung up."}
            click.echo(words.get(signum, "Terminated."), err=True)
            _SIGNALLED.append(signum)  # run() leaves without the interpreter's teardown
            ctx.exit(128 + signum)
        finally:
            restore()


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (terminal closed, ssh dropped) raised like Ctrl-C, so that temporary
    outputs and child processes are cleaned up. ``signum`` is the signal received."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = signum


def _raise_terminated(signum, frame):
    raise _Terminated(signum)


def _terminate_like_ctrl_c():
    """Turn SIGTERM and SIGHUP into :class:`_Terminated` while a command runs (commands with
    their own handler, like ``serve``, replace it). Returns the function that restores the old
    handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    restore = []
    for signum in (signal.SIGTERM, signal.SIGHUP):
        old = signal.getsignal(signum)
        if old is signal.SIG_DFL:
            signal.signal(signum, _raise_terminated)
            restore.append((signum, old))
    return lambda: [signal.signal(s, h) for s, h in restore]


def _extra_for(name: str) -> str:
    return "host" if name in ("convert", "compile", "train", "zoo") else "device"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def main() -> None:
    """Take a Keras image model to a Coral Edge TPU on a Raspberry Pi, and keep it running.

    Host (x86-64): convert, inspect, zoo, train. Device (Pi): classify, detect, bench, serve,
    doctor. Fleet: keygen, sign, verify, rollout.
    Without an Edge TPU every device command runs on the CPU interpreter (emulation).
    """


def run() -> None:
    """Console-script entry point."""
    try:
        main(prog_name="edgekit")
    except SystemExit as e:
        if _SIGNALLED:
            _exit_without_teardown(e.code if isinstance(e.code, int) else 1)
        raise


_SIGNALLED: list[int] = []  # signals that ended a command (its own cleanup has run)


def _exit_without_teardown(code: int) -> None:
    """Leave at once after a signal, once the command's cleanup has run (temporary outputs
    removed, child processes killed, lock files gone): run the atexit callbacks (TensorFlow's
    autograph deletes its temporary files there), flush, ``os._exit``.

    The interpreter's normal teardown is what kept a signalled ``convert`` alive: with
    TensorFlow loaded it garbage-collects the whole heap, 1.3-1.4 s of CPU for a 16x16 model
    (perf: ``gc_collect_main``, no system calls), against 0.14 s for everything else after the
    signal; on a shared, loaded machine that CPU time became tens of seconds of wall time
    (a test waiting 60 s for exit after SIGHUP timed out)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
