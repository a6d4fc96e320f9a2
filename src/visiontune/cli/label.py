"""``visiontune label ...``: labeling jobs (create, workers, serve, status, export)."""

from __future__ import annotations

import json

import click

DEFAULT_PORT = 8770


@click.group("label")
def label_group():
    """Label images yourself or with a private workforce (SageMaker Ground Truth's workflow)."""


@label_group.command("create")
@click.argument("name")
@click.option("--images", required=True, help="a folder of images (searched recursively) or a manifest")
@click.option("--labels", required=True, help="the labels, comma-separated: damage,no_damage")
@click.option("--multi-label", is_flag=True, help="an image may take several labels")
@click.option("--instructions", default=None, help="a Markdown/text file shown beside every image")
@click.option(
    "--workers-per-image",
    default=None,
    type=int,
    help="answers wanted per image [1 for one worker, 3 when there are 3 or more]",
)
@click.option(
    "--max-workers-per-image",
    default=None,
    type=int,
    help="an image whose answers disagree (or are not confident enough) goes to one more worker, up to "
    "this many [--workers-per-image: no more; 5 when that is left out]",
)
@click.option(
    "--min-confidence",
    default=None,
    type=float,
    help="images whose consolidated confidence is below this go to one more worker (needs room: "
    "--max-workers-per-image above --workers-per-image)",
)
@click.option(
    "--gold",
    default=None,
    help="images with known labels, mixed in unannounced: a CSV image,label or a manifest; they measure the workers",
)
@click.option("--workers", default=None, help="workers to add now, comma-separated (their links are printed)")
@click.option(
    "--auto-label",
    is_flag=True,
    help="active learning: a model labels the images it is sure of (rounds run while `label serve` runs)",
)
@click.option("--target-accuracy", type=float, default=None, help="the auto-labels' accuracy to reach [0.95]")
@click.option("--auto-label-model", default=None, help="the zoo backbone the auto-labeler uses [mobilenet_v2]")
@click.option("--auto-label-image-size", type=int, default=None, help="its input size [the model's own]")
def create_cmd(
    name,
    images,
    labels,
    multi_label,
    instructions,
    workers_per_image,
    max_workers_per_image,
    min_confidence,
    gold,
    workers,
    auto_label,
    target_accuracy,
    auto_label_model,
    auto_label_image_size,
):
    """Create a labeling job NAME over --images with --labels."""
    from visiontune.label import create

    auto = {}
    if auto_label_model:
        auto["model"] = auto_label_model
    if auto_label_image_size:
        auto["image_size"] = auto_label_image_size
    if auto and not auto_label:
        raise click.UsageError("--auto-label-model/--auto-label-image-size need --auto-label")
    names = [w.strip() for w in workers.split(",") if w.strip()] if workers else None
    made = create(
        name,
        images,
        labels,
        multi_label=multi_label,
        instructions=instructions,
        workers_per_image=workers_per_image,
        max_workers_per_image=max_workers_per_image,
        min_confidence=min_confidence,
        gold=gold,
        workers=names,
        auto_label=(auto or True) if auto_label else False,
        target_accuracy=target_accuracy,
    )
    n = made.images
    j = made.job
    click.echo(f"labeling job {name}: {n} images ({made.gold} gold), labels {', '.join(j.labels)}")
    if workers_per_image is None:
        click.echo(
            f"answers per image: {j.workers_per_image} now (1 for one worker, 3 when there are 3 or more); "
            f"disagreements go on to more workers, up to {j.max_workers_per_image}"
        )
    else:
        click.echo(
            f"answers per image: {j.workers_per_image}"
            + (f", up to {j.max_workers_per_image} where they disagree" if j.adaptive else "")
        )
        if names is None and j.workers_per_image > 1:
            click.echo(f"add at least {j.workers_per_image} workers: an image gets one answer from each", err=True)
    _links(name, made.workers, DEFAULT_PORT)
    for ref, why in made.skipped:
        click.secho(f"  left out {ref}: {why}", fg="yellow", err=True)
    if auto_label:
        from visiontune.label.active import settings_of

        a = settings_of(made.job)
        click.echo(
            f"auto-labeling: humans label a random sample of {a.first_round(made.images)} images first; then "
            f"{a.model} labels the images it is sure of (held-out accuracy >= {a.target_accuracy:.0%}) while "
            "`label serve` runs"
        )
    click.echo(f"next: visiontune label workers add {name} NAME... ; visiontune label serve {name}")


@label_group.group("workers")
def workers_group():
    """Add, re-link or revoke workers (each has a personal secret link)."""


def _links(job: str, secrets: dict[str, str], port: int) -> None:
    for name, secret in secrets.items():
        click.echo(f"{name}: http://127.0.0.1:{port}/w/{secret}")


@workers_group.command("add")
@click.argument("job")
@click.argument("names", nargs=-1, required=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="the port `label serve` will use")
def workers_add_cmd(job, names, port):
    """Add workers by name and print each one's personal link (a name already there gets a new link)."""
    from visiontune.label import LabelStore

    store = LabelStore()
    j = store.get_job(job)
    there = sorted(set(names) & {w["name"] for w in store.workers(j)})
    _links(job, store.add_workers(j, list(names)), port)
    if there:
        click.echo(
            f"{', '.join(there)} had a link already: the new one replaces it (the old one no longer works)", err=True
        )


@workers_group.command("link")
@click.argument("job")
@click.argument("name")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="the port `label serve` will use")
def workers_link_cmd(job, name, port):
    """A new link for a worker (the old one stops working)."""
    from visiontune.label import LabelStore

    store = LabelStore()
    j = store.get_job(job)
    if name not in [w["name"] for w in store.workers(j)]:
        raise click.UsageError(f"job {job} has no worker named {name!r}; add them with `label workers add`")
    _links(job, store.add_workers(j, [name]), port)


@workers_group.command("revoke")
@click.argument("job")
@click.argument("name")
def workers_revoke_cmd(job, name):
    """Revoke a worker's link (their answers stay)."""
    from visiontune.label import LabelStore

    store = LabelStore()
    store.revoke_worker(store.get_job(job), name)
    click.echo(f"{name}'s link no longer works")


@label_group.command("serve")
@click.argument("job")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="the port to listen on")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--allow-remote", is_flag=True, help="needed to listen on anything but this machine")
@click.option("--new-link", is_flag=True, help="a new owner link (the old one stops working)")
def serve_cmd(job, port, host, allow_remote, new_link):
    """Start the labeling app (workers' pages and the owner's view)."""
    from visiontune.label.app import serve

    serve(job, host=host, port=port, allow_remote=allow_remote, new_link=new_link, announce=click.echo)


@label_group.command("owner-url")
@click.argument("job")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="the port `label serve` uses")
@click.option("--host", default="127.0.0.1", show_default=True, help="the host `label serve` listens on")
@click.option("--new-link", is_flag=True, help="make a new owner link (the old one stops working)")
def owner_url_cmd(job, port, host, new_link):
    """Print the owner's link (the same across `label serve` restarts unless --new-link)."""
    from visiontune.label import LabelStore

    store = LabelStore()
    secret = store.owner_secret(store.get_job(job), new=new_link)
    from visiontune.web.security import base_url

    click.echo(f"{base_url(host, port)}/o/{secret}")


@label_group.command("status")
@click.argument("job")
def status_cmd(job):
    """Progress, answers per worker, their agreement and estimated accuracy, ties and unresolved images (JSON;
    on a terminal, what needs the owner is said after it in words, on stderr)."""
    import sys

    from visiontune.label import status

    st = status(job)
    click.echo(json.dumps(st, indent=2))
    if not sys.stdout.isatty():  # a pipe or a program reads the JSON alone
        return
    for problem in st.get("problems", []):
        click.secho(f"note: {problem}", fg="yellow", err=True)
    for key, what in (("ties", "tie"), ("unresolved", "unresolved")):
        for row in st.get(key, []):
            names = st["labels"]
            votes = (
                ", ".join(
                    f"{w}: {'+'.join(names[c] for c in v) if isinstance(v, list) else names[v]}"
                    for w, v in row["votes"].items()
                )
                or "no answer"
            )
            skipped = f"; skipped by {', '.join(row['skipped_by'])}" if row["skipped_by"] else ""
            click.echo(f"{what}: {row['source_ref']} ({votes}{skipped})", err=True)


@label_group.command("auto")
@click.argument("job")
@click.option("--device", default="auto", show_default=True, help="where the backbone runs: auto, cpu, cuda")
def auto_cmd(job, device):
    """Run one auto-labeling round now (`label serve` runs them as humans label)."""
    from visiontune.label import auto_label_round
    from visiontune.label.active import describe

    summary = auto_label_round(job, device=device)
    click.echo(describe(summary), err=True)
    click.echo(json.dumps(summary, indent=2))


@label_group.command("list")
def list_cmd():
    """Every labeling job."""
    from visiontune.label import LabelStore

    for j in LabelStore().list_jobs():
        more = f" (up to {j.max_workers_per_image})" if j.adaptive else ""
        click.echo(f"{j.name}\t{len(j.labels)} labels\t{j.workers_per_image} worker(s)/image{more}")


@label_group.command("export")
@click.argument("job")
@click.option("--out", required=True, help="output folder")
@click.option("--split", type=float, default=None, help="also write stratified train/validation manifests (0.8)")
@click.option("--folders", is_flag=True, help="also write class folders (hard links or copies of the images)")
@click.option(
    "--include-unresolved",
    is_flag=True,
    help="also write images still waiting for answers or nobody could label, marked as such",
)
@click.option("--overwrite", is_flag=True, help="replace an earlier export in --out, whole")
def export_cmd(job, out, split, folders, include_unresolved, overwrite):
    """Write the augmented manifest (Ground Truth's format), the worker responses, and optionally splits
    and class folders.  `visiontune train --data OUT/manifests/output/output.manifest` trains on it."""
    from visiontune.label import export

    result = export(job, out, split=split, folders=folders, include_unresolved=include_unresolved, overwrite=overwrite)
    for note in result.pop("notes"):
        click.secho(f"note: {note}", fg="yellow", err=True)
    click.echo(json.dumps(result, indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(label_group)
