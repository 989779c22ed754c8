#!/usr/bin/python3
"""Small HDF5 files for the tests of Naani's own HDF5 reader (Serialization/Hdf5ReaderTests.cs) and of KerasWeights
on HDF5 layouts other than h5py's default one. Written by h5py (HDF5 1.10); the tests read them without Python.

keras/small_weights_latest.h5   small_weights.h5's layers and weights, copied, written with libver='latest'
                                (superblock 3, version-2 object headers, link messages) and 24 more layers without
                                weights, so that the root's 30 links are in dense storage (a fractal heap and its
                                v2 B-tree name index)
keras/float64_vlen_latest.h5    a Dense layer with float64 weights, layer_names and weight_names as variable-length
                                strings (what writers other than Keras use), libver='latest'
keras/keras3_layout.weights.h5  Keras 3's own layout (layers/NAME/vars/0), which KerasWeights recognizes and refuses
hdf5/features.h5                default libver (superblock 0, version-1 object headers, symbol tables): floats of
                                2, 4 and 8 bytes in both byte orders, an integer dataset, a scalar, string attributes
                                (fixed-length and variable-length, scalar and lists), an empty float64 attribute,
                                compact and chunked datasets (plain, and shuffle + gzip), soft and external links
hdf5/features_latest.h5         the same with libver='latest' (dataspace 2, attribute message 3, layout message 4:
                                a single-chunk and a fixed-array chunk index), plus a group of 12 attributes (dense
                                attribute storage)
hdf5/superblock_v2_userblock.h5 superblock 2 (libver 'v108') after a 512-byte user block
(h5py cannot set the indexed-storage B-tree K that makes superblock 1: the tests rewrite features.h5's superblock 0
as a version 1 one.)

Run with Debian's python3-h5py: /usr/bin/python3 make_hdf5_fixtures.py
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS = os.path.join(HERE, "keras")
HDF5 = os.path.join(HERE, "hdf5")

# -1, -0.75, ..., exact in float16
VALUES = (np.arange(2 * 3, dtype=np.float64) * 0.25 - 1.0).reshape(2, 3)
GRID = np.arange(5 * 7, dtype=np.float64).reshape(5, 7) / 8.0


def copy_keras_layers(source, target, extra_layers=0):
    names = list(source.attrs["layer_names"]) + [f"dropout_{i:02d}".encode() for i in range(extra_layers)]
    target.attrs["layer_names"] = np.asarray(names)
    for key in ("backend", "keras_version"):
        target.attrs[key] = source.attrs[key]
    for name in names:
        name = name.decode()
        g = target.create_group(name)
        if name not in source:
            g.attrs["weight_names"] = np.asarray([])
            continue
        g.attrs["weight_names"] = source[name].attrs["weight_names"]
        for weight_name in source[name].attrs["weight_names"]:
            value = source[name][weight_name.decode()][()]
            g.create_dataset(weight_name.decode(), value.shape, dtype=value.dtype)[:] = value


def write_features(f):
    floats = f.create_group("floats")
    for dtype in ("<f2", ">f2", "<f4", ">f4", "<f8", ">f8"):
        floats.create_dataset(f"{dtype[1:]}_{'le' if dtype[0] == '<' else 'be'}", data=VALUES.astype(dtype))
    f.create_dataset("int32", data=np.arange(4, dtype="<i4"))
    f.create_dataset("scalar", data=np.float32(2.5))

    strings = f.create_group("strings")
    strings.attrs["fixed"] = np.asarray([b"ab", b"cde", b""])
    strings.attrs["vlen"] = ["alpha", "beta", "\u03b3amma"]
    strings.attrs["scalar_fixed"] = np.bytes_(b"xyz")
    strings.attrs["scalar_vlen"] = "hello"
    strings.attrs["empty"] = np.asarray([])

    chunked = f.create_group("chunked")
    chunked.create_dataset("plain", data=GRID.astype("<f4"), chunks=(2, 3))
    chunked.create_dataset("gzip", data=GRID.astype(">f8"), chunks=(2, 3), shuffle=True, compression="gzip")
    chunked.create_dataset("single", data=GRID.astype("<f4"), chunks=(5, 7))

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    space = h5py.h5s.create_simple((2, 3))
    compact = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    compact.write(h5py.h5s.ALL, h5py.h5s.ALL, VALUES.astype("<f4"))

    f["soft"] = h5py.SoftLink("/floats")
    f["external"] = h5py.ExternalLink("other.h5", "/floats")


def main():
    os.makedirs(HDF5, exist_ok=True)
    with h5py.File(os.path.join(KERAS, "small_weights.h5"), "r") as source:
        with h5py.File(os.path.join(KERAS, "small_weights_latest.h5"), "w", libver="latest") as f:
            copy_keras_layers(source, f, extra_layers=24)

    with h5py.File(os.path.join(KERAS, "float64_vlen_latest.h5"), "w", libver="latest") as f:
        f.attrs["layer_names"] = ["flatten", "dense_a"]
        f.create_group("flatten").attrs["weight_names"] = np.asarray([])
        g = f.create_group("dense_a")
        g.attrs["weight_names"] = ["dense_a/kernel:0", "dense_a/bias:0"]
        g.create_dataset("dense_a/kernel:0", data=np.arange(1, 7, dtype=np.float64).reshape(2, 3) * 0.125)
        g.create_dataset("dense_a/bias:0", data=np.asarray([-1.0, 0.0, 1.0]))

    with h5py.File(os.path.join(KERAS, "keras3_layout.weights.h5"), "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.asarray([1.0, 2.0], dtype=np.float32))

    with h5py.File(os.path.join(HDF5, "features.h5"), "w") as f:
        write_features(f)
    with h5py.File(os.path.join(HDF5, "features_latest.h5"), "w", libver="latest") as f:
        write_features(f)
        many = f.create_group("many_attributes")
        for i in range(12):
            many.attrs[f"a{i:02d}"] = f"value {i}".encode()

    with h5py.File(os.path.join(HDF5, "superblock_v2_userblock.h5"), "w", libver=("v108", "v108"), userblock_size=512) as f:
        f.create_dataset("values", data=VALUES.astype("<f4"))

    for folder in (KERAS, HDF5):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".h5"):
                path = os.path.join(folder, name)
                print(f"{os.path.getsize(path):7d}  {os.path.relpath(path, HERE)}")


if __name__ == "__main__":
    main()
