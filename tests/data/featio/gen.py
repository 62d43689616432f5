#!/usr/bin/python3
# gen.py - writes the reference .npy files that tests/unit/test_featio.c reads.
# Run once from this directory with numpy (1.24 made the committed files);
# the tests never need python.
import numpy as np
from numpy.lib import format as npf

x = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 7   # 2 x 3 float32
np.save("f32_2x3.npy", x)                       # v1.0, the bytes featio_write_npy must match
np.save("f64_2x3.npy", x.astype(np.float64))    # converted to float32 on read
with open("f32_2x3_v2.npy", "wb") as f:         # v2.0 header (uint32 length)
    npf.write_array(f, x, version=(2, 0))
with open("f32_2x3_v3.npy", "wb") as f:         # v3.0 header (utf-8)
    npf.write_array(f, x, version=(3, 0))
np.save("f32_2x3_fortran.npy", np.asfortranarray(x))   # fortran_order True: an error
np.save("coords_i8_2x2.npy", np.array([[0, 256], [512, -7]], dtype=np.int64))
