#!/usr/bin/python3
"""Extracts R's `airquality` data set (datasets package) from Debian's r-base-core package into
data/airquality.json, without R: the package's lazy-load database (Rdata.rdx index + Rdata.rdb objects) is
read with a small reader of R's XDR serialization format.

    apt-get download r-base-core && dpkg -x r-base-core_*.deb /tmp/x
    /usr/bin/python3 scripts/data/airquality.py /tmp/x [data/airquality.json]

The output is deterministic (same package → same bytes). Missing values (R's NA) become JSON null.
Source of the data (R's ?airquality): New York State Department of Conservation (ozone) and the National
Weather Service (meteorology), daily readings May 1 – September 30, 1973; Chambers, Cleveland, Kleiner and
Tukey (1983), Graphical Methods for Data Analysis, Wadsworth.
"""
import gzip
import json
import lzma
import bz2
import os
import struct
import sys
import zlib

NA_INT = -(2**31)


class Reader:
    """R serialization format 2/3, XDR ('X\\n'), the object types a data frame uses."""

    def __init__(self, buf):
        self.b = buf
        self.i = 0
        self.refs = []

    def int(self):
        v = struct.unpack(">i", self.b[self.i:self.i + 4])[0]
        self.i += 4
        return v

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self):
        fmt = self.b[:2]
        if fmt != b"X\n":
            raise ValueError(f"not an XDR serialization: {fmt!r}")
        self.i = 2
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal R version
        if version == 3:
            n = self.int()
            self.i += n  # native encoding
        return self.item()

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == 254:  # NILVALUE
            return None
        if t in (253, 242, 241, 247, 251, 252):  # global/empty/base env, base namespace, missing, unbound
            return {"special": t}
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t in (249, 250, 248):  # namespace / package / persistent: a string vector of names
            self.int()  # 0
            n = self.int()
            names = [self.item() for _ in range(n)]
            obj = {"env": names}
            self.refs.append(obj)
            return obj
        if t == 1:  # SYMSXP
            name = self.item()
            obj = {"sym": name}
            self.refs.append(obj)
            return obj
        if t in (2, 6, 239, 240):  # LISTSXP, LANGSXP and their attribute forms: a pairlist as a Python list
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                car = self.item()
                out.append((tag["sym"] if isinstance(tag, dict) and "sym" in tag else tag, car))
                flags = self.int()
                t = flags & 0xFF
                has_attr = bool(flags & (1 << 9))
                has_tag = bool(flags & (1 << 10))
                if t not in (2, 6, 239, 240):
                    self.i -= 4
                    rest = self.item()
                    if rest is not None:
                        out.append((None, rest))
                    return {"pairlist": out}
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.b[self.i:self.i + n].decode("utf-8")
            self.i += n
            return s
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            v = list(struct.unpack(f">{n}i", self.b[self.i:self.i + 4 * n]))
            self.i += 4 * n
            v = [None if x == NA_INT else x for x in v]
            return self.attrs({"type": "int", "v": v}, has_attr)
        if t == 14:  # REALSXP
            n = self.length()
            raw = self.b[self.i:self.i + 8 * n]
            self.i += 8 * n
            v = list(struct.unpack(f">{n}d", raw))
            # R's NA_real_ is a NaN with low word 1954; any NaN is missing here
            v = [None if x != x else x for x in v]
            return self.attrs({"type": "real", "v": v}, has_attr)
        if t == 16:  # STRSXP
            n = self.length()
            return self.attrs({"type": "str", "v": [self.item() for _ in range(n)]}, has_attr)
        if t in (19, 20):  # VECSXP, EXPRSXP
            n = self.length()
            return self.attrs({"type": "list", "v": [self.item() for _ in range(n)]}, has_attr)
        if t == 238:  # ALTREP: class info, state, attributes
            info = self.item()
            state = self.item()
            attr = self.item()
            cls = info["pairlist"][0][1]["sym"] if info and "pairlist" in info else None
            if cls == "compact_intseq":
                n, start, step = state["v"]
                obj = {"type": "int", "v": [int(start + k * step) for k in range(int(n))]}
            elif cls == "compact_realseq":
                n, start, step = state["v"]
                obj = {"type": "real", "v": [start + k * step for k in range(int(n))]}
            else:
                raise ValueError(f"unsupported ALTREP class {cls}")
            if attr is not None:
                obj["attr"] = dict(attr["pairlist"])
            return obj
        raise ValueError(f"unsupported SEXP type {t} at byte {self.i}")

    def attrs(self, obj, has_attr):
        if has_attr:
            a = self.item()
            obj["attr"] = dict(a["pairlist"])
        return obj


def unserialize(buf):
    return Reader(buf).header()


def decompress(blob):
    """One lazy-load DB entry: 4-byte big-endian length, then zlib, or a type byte Z (xz), 2 (bzip2), 0 (none)."""
    n = struct.unpack(">I", blob[:4])[0]
    kind = blob[4:5]
    if kind == b"Z":
        # R writes a raw LZMA2 stream (no .xz container); a dictionary of preset 9 covers R's preset
        d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}])
        out = d.decompress(blob[5:])
    elif kind == b"2":
        out = bz2.decompress(blob[5:])
    elif kind == b"0":
        out = blob[5:]
    else:
        out = zlib.decompress(blob[4:])
    if len(out) != n:
        raise ValueError(f"entry decompressed to {len(out)} bytes, expected {n}")
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    out_path = sys.argv[2] if len(sys.argv) > 2 else "data/airquality.json"
    base = os.path.join(root, "usr/lib/R/library/datasets/data/Rdata")
    with gzip.open(base + ".rdx", "rb") as f:
        index = unserialize(f.read())
    entries = dict(zip(index["attr"]["names"]["v"], index["v"]))
    variables = dict(zip(entries["variables"]["attr"]["names"]["v"], entries["variables"]["v"]))
    off, size = (int(x) for x in variables["airquality"]["v"])
    with open(base + ".rdb", "rb") as f:
        f.seek(off)
        blob = f.read(size)
    df = unserialize(decompress(blob))
    names = df["attr"]["names"]["v"]
    cls = df["attr"]["class"]["v"]
    if cls != ["data.frame"] or names != ["Ozone", "Solar.R", "Wind", "Temp", "Month", "Day"]:
        raise ValueError(f"unexpected airquality layout: class {cls}, columns {names}")
    cols = {n: c["v"] for n, c in zip(names, df["v"])}
    with open(os.path.join(root, "usr/lib/R/library/datasets/DESCRIPTION")) as f:
        version = next(l.split(":", 1)[1].strip() for l in f if l.startswith("Version:"))
    doc = {
        "name": "airquality",
        "description": "Daily air quality measurements in New York, May 1 to September 30, 1973 (153 days).",
        "columns": {
            "Ozone": "mean ozone in parts per billion, 13:00-15:00, Roosevelt Island",
            "Solar.R": "solar radiation in Langleys, 4000-7700 Angstroms, 08:00-12:00, Central Park",
            "Wind": "average wind speed in miles per hour at 07:00 and 10:00, LaGuardia Airport",
            "Temp": "maximum daily temperature in degrees Fahrenheit, LaGuardia Airport",
            "Month": "month (5-9)",
            "Day": "day of the month (1-31)",
        },
        "missing": "null = NA in R (not measured); nothing is imputed in this file",
        "source": "New York State Department of Conservation (ozone data) and the National Weather Service "
        "(meteorological data); Chambers, J. M., Cleveland, W. S., Kleiner, B. and Tukey, P. A. (1983) "
        "Graphical Methods for Data Analysis. Belmont, CA: Wadsworth.",
        "extracted_from": f"Debian package r-base-core, R datasets package {version}, "
        "usr/lib/R/library/datasets/data/Rdata.rdb, by scripts/data/airquality.py",
        "license": "Part of R (GPL-2 | GPL-3); the data are public records",
        "rows": [[cols[n][i] for n in names] for i in range(len(cols["Ozone"]))],
        "fields": names,
    }
    # whole numbers as integers (Wind keeps its decimals)
    for row in doc["rows"]:
        for j, v in enumerate(row):
            if isinstance(v, float) and v.is_integer():
                row[j] = int(v)
    text = json.dumps(doc, indent=None, separators=(",", ":"))
    # one row per line: readable diffs
    text = text.replace("],[", "],\n[").replace('"rows":[[', '"rows":[\n[')
    with open(out_path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {out_path}: {len(doc['rows'])} rows, columns {names}")


if __name__ == "__main__":
    main()
