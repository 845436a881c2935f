#!/usr/bin/python3
"""Generated inputs of bench/cnn_e2e.sh's OCR models: lines of text drawn
with the DejaVu fonts (Debian's fonts-dejavu-core, python3-pil), as
PaddleOCR's preprocessing makes them. Deterministic (fixed seed).

  cnn_images.py cls N OUT.npy LABELS.npy
      N text lines, half of them upside down (label 1), each resized to
      height 48 keeping its ratio, padded to width 192, scaled to [-1, 1]:
      float32 [N, 1, 3, 48, 192] (the direction classifier's input)
  cnn_images.py det N SIZE OUT.npy
      N pages of SIZE x SIZE with 6 to 14 lines of text at random places,
      normalized with ImageNet's mean and deviation: [N, 1, 3, SIZE, SIZE]
"""
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]
WORDS = ("invoice total amount date number account payment order customer address street city "
         "quantity price tax shipping reference 2024 1998 42.50 17 item description balance due "
         "the quick brown fox jumps over lazy dog hello world receipt").split()
rng = np.random.RandomState(16)


def font(size):
    name = FONTS[rng.randint(len(FONTS))]
    try:
        return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/" + name, size)
    except OSError:
        return ImageFont.load_default()


def line_text():
    return " ".join(WORDS[i] for i in rng.randint(len(WORDS), size=rng.randint(1, 5)))


def text_line():
    f = font(rng.randint(18, 40))
    t = line_text()
    box = f.getbbox(t)
    w, h = box[2] - box[0] + 8, box[3] - box[1] + 8
    bg = int(rng.randint(180, 256))
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    fg = tuple(int(v) for v in rng.randint(0, 90, size=3))
    ImageDraw.Draw(img).text((4 - box[0], 4 - box[1]), t, font=f, fill=fg)
    return img


def cls(n, out, labels):
    xs = np.zeros((n, 1, 3, 48, 192), np.float32)
    ys = np.zeros(n, np.int64)
    for i in range(n):
        img = text_line()
        if i % 2:
            img = img.rotate(180)
            ys[i] = 1
        w = min(192, max(1, int(round(img.width * 48 / img.height))))
        a = np.asarray(img.resize((w, 48), Image.BILINEAR), np.float32) / 255
        a = (a - 0.5) / 0.5
        xs[i, 0, :, :, :w] = a.transpose(2, 0, 1)
    np.save(out, xs)
    np.save(labels, ys)


def det(n, size, out):
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    xs = np.zeros((n, 1, 3, size, size), np.float32)
    for i in range(n):
        bg = int(rng.randint(200, 256))
        page = Image.new("RGB", (size, size), (bg, bg, bg))
        for _ in range(rng.randint(6, 15)):
            line = text_line()
            x, y = rng.randint(0, max(1, size - line.width)), rng.randint(0, size - line.height)
            page.paste(line, (int(x), int(y)))
        a = (np.asarray(page, np.float32) / 255 - mean) / std
        xs[i, 0] = a.transpose(2, 0, 1)
    np.save(out, xs)


if sys.argv[1] == "cls":
    cls(int(sys.argv[2]), sys.argv[3], sys.argv[4])
else:
    det(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
