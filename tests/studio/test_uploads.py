"""Upload errors name the user's file (not the temporary one it was received into), and a dropped file that
is named like an image but is not one is refused at upload (issue 33, item 14)."""

from __future__ import annotations


def test_a_bad_zip_is_named_as_the_user_named_it(studio):
    c, _ = studio
    r = c.post(
        "/api/data/upload?name=holiday&filename=holiday-photos.zip",
        content=b"not a zip at all",
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 400
    assert "holiday-photos.zip: not a zip file" in r.json()["error"] and ".upload-" not in r.json()["error"]


def test_a_text_file_named_jpg_is_refused_at_upload(studio):
    c, _ = studio
    r = c.post(
        "/api/data/upload?name=pets&label=cat&filename=cat.jpg",
        content=b"hello, I am text",
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 400 and "cat.jpg" in r.json()["error"] and "image files only" in r.json()["error"]
    uploads = c.get("/api/data/roots").json()[-1]["path"]
    from pathlib import Path

    assert not (Path(uploads) / "pets" / "cat" / "cat.jpg").exists()
