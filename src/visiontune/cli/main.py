"""The ``visiontune`` command: one module per command group, no logic the Python API lacks."""

from __future__ import annotations

import errno
import os
import sys

import click

from visiontune.version import __version__
from visiontune.errors import VisiontuneError, option_style


class _Group(click.Group):
    """Prints typed errors as one clear line (no traceback) and exits 2."""

    def invoke(self, ctx):
        try:
            with option_style("cli"):
                return super().invoke(ctx)
        except VisiontuneError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho(
                "interrupted. A training run continues with the same command plus --resume.", fg="yellow", err=True
            )
            sys.exit(130)
        except BrokenPipeError:
            if not _stdout_gone():  # a socket or a child's pipe: a real failure, shown as one
                raise
            # `visiontune ... | head`: the reader has gone (the job itself finished; its log has everything)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            sys.exit(141)  # 128 + SIGPIPE, as a tool killed by the broken pipe would
        except OSError as exc:
            from visiontune.writes import is_write_failure, output_error

            if not is_write_failure(exc):
                raise
            # a full disk or a read-only folder in any command (export, quickstart, data ...): one line
            if exc.errno in (errno.EACCES, errno.EPERM):  # may be a read as well as a write
                click.secho(
                    f"error: cannot access {exc.filename or 'a file'}: {exc.strerror or exc}; check its "
                    "permissions (an output: choose another --out)",
                    fg="red",
                    err=True,
                )
                sys.exit(2)
            with option_style("cli"):
                error = output_error(exc)
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(error.exit_code)


def _stdout_gone() -> bool:
    """Whether the reader of this process's stdout (a pipe) has closed it."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout without a file descriptor
        return False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="visiontune")
def cli() -> None:
    """Fine-tune, evaluate and serve image classifiers on your own machine."""


def _register() -> None:
    from visiontune.cli import (
        auto,
        data,
        debug,
        endpoints,
        jobs,
        label,
        models,
        predict,
        quickstart,
        serve,
        studio,
        train,
        tune,
    )

    for module in (data, label, models, train, auto, jobs, tune, debug, predict, serve, endpoints, studio, quickstart):
        module.register(cli)


_register()


def main() -> None:
    cli(prog_name="visiontune")


if __name__ == "__main__":
    main()
