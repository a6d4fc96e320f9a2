"""A real PostgreSQL server for the store tests, installed from Debian's packages and started here.

The server runs as the unprivileged ``postgres`` user (as root) in a temporary folder, listens on a
free port on 127.0.0.1 only, and is stopped and removed when the session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from visiontune.serve.endpoints import free_port
from tests.conftest import apt_install


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    return os.path.dirname(shutil.which("initdb")) if shutil.which("initdb") else None


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql://postgres@127.0.0.1:PORT/visiontune_test`` on a server started for this session."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'visiontune[postgres]')")
    if _pg_bin() is None:
        why = apt_install("postgresql")
        if why or _pg_bin() is None:
            pytest.skip(f"no PostgreSQL server for the store tests: {why or 'initdb not found after installing'}")
    bin_ = _pg_bin()
    root = tempfile.mkdtemp(prefix="vt-pg-")
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, port = os.path.join(root, "data"), free_port()
    subprocess.run(
        [*run_as, f"{bin_}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*run_as, f"{bin_}/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        import sqlalchemy

        admin = sqlalchemy.create_engine(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        deadline = time.time() + 30
        while True:
            try:
                with admin.connect() as c:
                    c.exec_driver_sql("CREATE DATABASE visiontune_test")
                break
            except sqlalchemy.exc.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        admin.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}/visiontune_test"
    finally:
        subprocess.run([*run_as, f"{bin_}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same tests on the embedded SQLite store and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("postgres_url")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as c:  # a clean database for each test
        c.exec_driver_sql("DROP SCHEMA public CASCADE")
        c.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url
