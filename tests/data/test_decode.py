"""Every kind of odd image is either converted correctly or refused by name."""

import io

import numpy as np
import pytest
from PIL import Image

from visiontune.data.decode import load_pixels, open_image
from visiontune.errors import BadImageError


def _save(img: Image.Image, path, fmt="PNG", **kw):
    img.save(path, format=fmt, **kw)
    return path


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    p = _save(Image.new("CMYK", (20, 10), (0, 255, 255, 0)), tmp_path / "c.jpg", "JPEG")
    img = open_image(p)
    assert img.mode == "RGB" and img.size == (20, 10)
    r, g, b = img.getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60  # cyan+magenta+yellow... this is red


def test_rgba_transparent_goes_on_white(tmp_path):
    p = _save(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), tmp_path / "a.png")
    assert open_image(p).getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    img.info["transparency"] = 0
    p = _save(img, tmp_path / "p.png", transparency=0)
    assert open_image(p).getpixel((0, 0)) == (0, 0, 255)


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    arr = np.full((6, 6), 32768, dtype=np.uint16)
    p = _save(Image.fromarray(arr), tmp_path / "g16.png")
    r, g, b = open_image(p).getpixel((0, 0))
    assert r == g == b and 120 <= r <= 135  # half of full scale, not 255


def test_greyscale_and_bilevel(tmp_path):
    assert open_image(_save(Image.new("L", (4, 4), 77), tmp_path / "l.png")).getpixel((0, 0)) == (77, 77, 77)
    assert open_image(_save(Image.new("1", (4, 4), 1), tmp_path / "b.png")).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes())
    assert open_image(p).size == (10, 30)


def test_truncated_jpeg_is_named(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImageError, match=r"cut\.jpg.*(truncated|corrupt)"):
        open_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello, I am text")
    with pytest.raises(BadImageError, match=r"notes\.jpg: not an image file"):
        open_image(p)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    import visiontune.data.decode as decode

    monkeypatch.setattr(decode, "MAX_PIXELS", 100)
    p = _save(Image.new("RGB", (20, 20)), tmp_path / "big.png")
    with pytest.raises(BadImageError, match="over the limit"):
        decode.open_image(p)


def test_bytes_input_and_resize(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (50, 100), (1, 2, 3)).save(buf, "PNG")
    pix = load_pixels(buf.getvalue(), 32)
    assert pix.shape == (32, 32, 3) and pix.dtype == np.uint8


def _photo(w: int, h: int) -> Image.Image:
    """A smooth picture with some edges (a photo's content, without noise that only DCT scaling would blur)."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, ((x // 97 + y // 61) % 2) * 200], -1).astype(np.uint8)
    return Image.fromarray(arr)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_with_the_same_picture(monkeypatch):
    from PIL import JpegImagePlugin

    from visiontune.data.decode import fit, load_pixels, open_image

    drafted = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        out = real(self, mode, size)
        drafted.append(self.size)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    buf = io.BytesIO()
    _photo(1600, 1200).save(buf, "JPEG", quality=95)
    fast = load_pixels(buf.getvalue(), 224)
    assert drafted == [(400, 300)]  # 1/4 scale: both sides still >= 224
    full = np.asarray(fit(open_image(buf.getvalue()), 224))  # no draft: the whole image decoded
    assert fast.shape == full.shape == (224, 224, 3)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 4
    drafted.clear()
    small = io.BytesIO()
    _photo(400, 300).save(small, "JPEG")  # under twice the size: decoded whole
    png = io.BytesIO()
    _photo(1600, 1200).save(png, "PNG")  # only JPEG decoders scale
    assert load_pixels(small.getvalue(), 224).shape == load_pixels(png.getvalue(), 224).shape == (224, 224, 3)
    assert drafted == []


def test_a_rotated_large_jpeg_is_upright_after_a_reduced_decode(tmp_path):
    from visiontune.data.decode import load_pixels

    img = _photo(1600, 800)  # landscape as stored; orientation 6 says: show it rotated, as a portrait
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    pixels = load_pixels(buf.getvalue(), 200, resize="squash")
    upright = np.asarray(img.transpose(Image.Transpose.ROTATE_270).resize((200, 200), Image.BILINEAR))
    assert np.abs(pixels.astype(int) - upright.astype(int)).mean() < 6


@pytest.mark.parametrize("shape", [(300, 451), (451, 300), (60, 40), (224, 300), (224, 224), (2000, 3000)])
def test_the_centre_crop_resampled_alone_matches_resize_then_crop(shape):
    """``resize_center_crop`` resamples only the square it keeps: the pixels of resizing the whole image
    and cutting the square out, within one grey level (two where a large image is first reduced by whole
    factors, on a grid that starts elsewhere)."""
    from visiontune.data.decode import resize_center_crop

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)  # smooth, with detail
    size = 224
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    whole = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None if max(w, h) < 4 * size else 3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    expected = np.asarray(whole.crop((left, top, left + size, top + size)), dtype=int)
    got = np.asarray(resize_center_crop(img, size), dtype=int)
    assert got.shape == (size, size, 3)
    diff = np.abs(got - expected)
    assert diff.max() <= (1 if max(w, h) < 4 * size else 2) and diff.mean() < 0.2
