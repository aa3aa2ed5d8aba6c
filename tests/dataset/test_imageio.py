"""Decoding: every bad input of issue 4 gives a clear ImageReadError or a documented conversion."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from imstats.dataset import ImageReadError
from imstats.dataset.imageio import decode_image, is_image_file


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb(h=40, w=50, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def test_rgb_png_roundtrip_and_gray_stays_gray(tmp_path):
    a = rgb()
    p = tmp_path / "a.png"
    p.write_bytes(encode(Image.fromarray(a), "PNG"))
    np.testing.assert_array_equal(decode_image(p), a)
    g = a[:, :, 0]
    out = decode_image(encode(Image.fromarray(g), "PNG"))
    assert out.shape == g.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, g)


def test_truncated_jpeg(tmp_path):
    data = encode(Image.fromarray(rgb(200, 200)), "JPEG", quality=90)
    p = tmp_path / "t.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"t\.jpg: truncated or corrupt"):
        decode_image(p)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: empty file \(0 bytes\)"):
        decode_image(p)
    with pytest.raises(ImageReadError, match="empty data"):
        decode_image(b"")


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match=r"notes\.jpg: not an image file"):
        decode_image(p)


def test_16_bit_png_is_scaled_to_8_bits():
    v = np.array([[0, 257, 32768, 65535]], np.uint16)
    out = decode_image(encode(Image.fromarray(v), "PNG"))
    assert out.dtype == np.uint8
    # round(v * 255 / 65535): 257 -> 1, 32768 -> 128 (127.5 rounds up), 65535 -> 255
    np.testing.assert_array_equal(out, [[0, 1, 128, 255]])


def test_int32_mode_outside_16_bit_is_an_error():
    im = Image.fromarray(np.array([[0, 70000]], np.int32), mode="I")
    with pytest.raises(ImageReadError, match="outside the 16-bit range"):
        decode_image(encode(im, "TIFF"))


def test_float_tiff_in_unit_range_is_scaled():
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = decode_image(encode(Image.fromarray(f, mode="F"), "TIFF"))
    np.testing.assert_array_equal(out, [[0, 128, 255]])
    bad = np.array([[0.0, 300.0]], np.float32)
    with pytest.raises(ImageReadError, match="outside"):
        decode_image(encode(Image.fromarray(bad, mode="F"), "TIFF"))


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(encode(cmyk, "JPEG", quality=100))
    assert out.shape == (8, 16, 3)
    r, g, b = out[4, 8].astype(int)
    assert r > 240 and g < 15 and b < 15


def test_palette_png_with_transparency_drop_and_white():
    pal = Image.new("P", (6, 4), 0)
    pal.putpalette([0, 0, 255] + [10, 200, 10] * 255)
    pal.putpixel((5, 3), 1)
    data = encode(pal, "PNG", transparency=0)  # index 0 (blue) is transparent
    dropped = decode_image(data)
    assert dropped.shape == (4, 6, 3)
    assert dropped[0, 0].tolist() == [0, 0, 255]  # alpha ignored, as torchvision
    assert dropped[3, 5].tolist() == [10, 200, 10]
    white = decode_image(data, alpha="white")
    assert white[0, 0].tolist() == [255, 255, 255]
    assert white[3, 5].tolist() == [10, 200, 10]


def test_la_and_rgba_half_transparent_composite():
    la = Image.new("LA", (3, 3), (100, 128))
    assert decode_image(encode(la, "PNG")).tolist() == [[100] * 3] * 3
    # 100 * 128/255 + 255 * (1 - 128/255) = 177.2 -> Pillow's integer compositing
    w = decode_image(encode(la, "PNG"), alpha="white")
    assert w.ndim == 2 and abs(int(w[0, 0]) - 177) <= 1
    with pytest.raises(ValueError, match="alpha must be"):
        decode_image(encode(la, "PNG"), alpha="black")


def test_one_bit_image_becomes_0_and_255():
    im = Image.fromarray(np.array([[0, 1], [1, 0]], bool))
    out = decode_image(encode(im, "PNG"))
    np.testing.assert_array_equal(out, [[0, 255], [255, 0]])


def test_one_by_one_image_decodes():
    out = decode_image(encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"))
    assert out.shape == (1, 1, 3) and out[0, 0].tolist() == [1, 2, 3]


def test_decompression_bomb_is_an_error_not_a_warning(tmp_path):
    # a 1-bit PNG of 12 000 x 12 000 pixels compresses to a few kB
    p = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(p)
    assert os.path.getsize(p) < 100_000
    with pytest.raises(ImageReadError, match="decompression-bomb limit of 89478485"):
        decode_image(p)
    with pytest.raises(ImageReadError, match="exceeds the decompression-bomb limit of 100"):
        decode_image(encode(Image.new("L", (11, 10)), "PNG"), max_pixels=100)
    assert decode_image(encode(Image.new("L", (10, 10)), "PNG"), max_pixels=100).shape == (10, 10)


def test_unreadable_file(tmp_path, monkeypatch):
    # Tests run as root, for whom chmod 000 does not block reads: simulate the failure.
    p = tmp_path / "secret.png"
    p.write_bytes(encode(Image.new("L", (4, 4)), "PNG"))
    real_open = Image.open

    def deny(fp, *a, **k):
        if str(fp) == str(p):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(Image, "open", deny)
    with pytest.raises(ImageReadError, match=r"secret\.png: cannot read image: permission denied"):
        decode_image(p)


def test_directory_and_missing_file(tmp_path):
    d = tmp_path / "dir.jpg"
    d.mkdir()
    with pytest.raises(ImageReadError, match="is a directory"):
        decode_image(d)
    with pytest.raises(ImageReadError, match="cannot read file"):
        decode_image(tmp_path / "gone.jpg")


def test_exif_orientation_option():
    a = rgb(4, 6)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = encode(im, "PNG", exif=exif.tobytes())
    assert decode_image(data).shape == (4, 6, 3)
    turned = decode_image(data, exif_transpose=True)
    np.testing.assert_array_equal(turned, np.rot90(a, -1))


def test_is_image_file():
    assert is_image_file("a/B.JPEG") and is_image_file("x.png")
    assert not is_image_file("notes.txt") and not is_image_file("jpg")
