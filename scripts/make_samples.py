"""Re-create the bundled sample tiles (rrsis_engine/samples/) from the NAIP GeoTIFFs.

Usage: python scripts/make_samples.py PATH/TO/naip  (the folder with m_4709963_se_14_1_*.tif)
Crops keep all 4 bands (R, G, B, NIR), the CRS and a shifted transform. Imagery: USDA FSA NAIP (public domain).
"""

import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

CROPS = [  # (source date, name, col_off, row_off, size)
    ("20200831", "naip_2020_lakes", 0, 0, 512),
    ("20200831", "naip_2020_fields", 422, 211, 512),
    ("20090818", "naip_2009_lakes", 0, 0, 512),
]


def main(src_dir: str) -> None:
    out = Path(__file__).resolve().parents[1] / "rrsis_engine" / "samples"
    out.mkdir(exist_ok=True)
    for date, name, col, row, size in CROPS:
        src_path = Path(src_dir) / f"m_4709963_se_14_1_{date}.tif"
        with rasterio.open(src_path) as src:
            win = Window(col, row, min(size, src.width - col), min(size, src.height - row))
            data = src.read(window=win)
            profile = src.profile.copy()
            profile.update(width=win.width, height=win.height, transform=src.window_transform(win),
                           compress="deflate", tiled=True, blockxsize=256, blockysize=256)
            with rasterio.open(out / f"{name}.tif", "w", **profile) as dst:
                dst.write(data)
        print("wrote", out / f"{name}.tif", data.shape)


if __name__ == "__main__":
    main(sys.argv[1])
