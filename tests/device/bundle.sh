#!/usr/bin/env bash
# tests/device/bundle.sh BUILD OUT.tar.zst - packs what a GPU machine needs
# to run the CUDA checks (tests/device/gpu-checks.sh) without building: the
# tools, the CUDA test and benchmarks, the CUDA backend library, the Debian
# libraries they link (OpenBLAS, zstd, ...; not the C library, not CUDA's:
# the GPU machine brings CUDA 13, cuBLAS 13 and cuDNN 9) and, unless
# DEVICE_DATA=0, Debian's Fashion-MNIST files.  `make device-bundle` runs it.
set -euo pipefail
build=$1 out=$2
[ -e "$build/lib/libweno_cuda.so" ] || { echo "bundle.sh: $build/lib/libweno_cuda.so missing (a CUDA=0 build?)" >&2; exit 1; }
stage=$(mktemp -d "${TMPDIR:-/tmp}/weno-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,libs,tests,bench,data}
for t in mil-synth bag-info weno-fit weno-score auc-report auc-compare; do cp "$build/bin/$t" "$stage/bin/"; done
cp "$build/lib/libweno_cuda.so" "$stage/lib/"
for t in test_cuda; do cp "$build/tests/$t" "$stage/tests/"; done
for b in bench_cuda bench_nn; do
	if [ -x "$build/bench/$b" ]; then cp "$build/bench/$b" "$stage/bench/"; else echo "bundle.sh: note: no $build/bench/$b (make device-bundle builds it)" >&2; fi
done
# the shared libraries they need, but the C runtime's and CUDA's
ldd "$stage"/bin/* "$stage"/tests/* $(ls "$stage"/bench/* 2>/dev/null) "$stage/lib/libweno_cuda.so" 2>/dev/null |
	awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
	grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|lib(cuda|cudart|cublas|cublasLt|cudnn[^/]*)\.so' |
	while read -r l; do cp -L "$l" "$stage/libs/"; done
if [ "${DEVICE_DATA:-1}" = 1 ] && [ -d /usr/share/datasets/fashion-mnist ]; then
	mkdir -p "$stage/data/fashion-mnist"
	cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$stage/data/fashion-mnist/"
fi
git -C "$(dirname "$0")" rev-parse --short HEAD >"$stage/COMMIT" 2>/dev/null || echo unknown >"$stage/COMMIT"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - . | zstd -q -T0 -"${ZSTD_LEVEL:-10}" -o "$out.tmp" -f
mv "$out.tmp" "$out"
echo "bundle.sh: $out ($(du -h "$out" | cut -f1)): $(ls "$stage/bin" | wc -l) tools, $(ls "$stage/libs" | wc -l) libraries, data $(ls "$stage/data" | tr '\n' ' ')"
