"""``visiontune studio``: the web app."""

from __future__ import annotations

import click


@click.command("studio")
@click.option("--port", default=8765, show_default=True, type=int, help="port to listen on")
@click.option(
    "--data-root",
    "data_roots",
    multiple=True,
    type=click.Path(file_okay=False),
    help="a folder whose data the studio may browse and train on (repeatable; default: this folder)",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="address to bind (other than loopback: needs --allow-remote)"
)
@click.option("--allow-remote", is_flag=True, help="mean it: serve beyond this machine")
@click.option("--url", "show_url", is_flag=True, help="print the running studio's link (with its token) and exit")
@click.option(
    "--stop-endpoints",
    is_flag=True,
    help="on exit, stop the endpoints this studio deployed (otherwise they keep running, and the studio says which)",
)
def studio_cmd(port, data_roots, host, allow_remote, show_url, stop_endpoints):
    """Browse models, pick data, train, watch, compare, deploy and try models in the browser."""
    from visiontune.errors import ConfigError
    from visiontune.studio import running_url, serve

    if show_url:
        url = running_url()
        if url is None:
            raise ConfigError("no studio is running on this machine: start one with `visiontune studio`")
        click.echo(url)
        return
    serve(
        port=port,
        data_roots=list(data_roots) or None,
        host=host,
        allow_remote=allow_remote,
        stop_endpoints=stop_endpoints,
    )


def register(cli: click.Group) -> None:
    cli.add_command(studio_cmd)
