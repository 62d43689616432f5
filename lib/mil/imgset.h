/* imgset.h - labelled image sets: the inputs mil-synth draws its synthetic
 * MIL bags from (MNIST and Fashion-MNIST IDX files, the CIFAR-10 binary
 * batches, and class-folder trees such as NCT-CRC-HE-100K).
 *
 * Every image of a set has the same shape h x w x c, 8-bit, stored
 * row-major with interleaved channels (HWC); c is 1 (grey) or 3 (RGB).
 * Every image has one label, a class index below n_classes.
 *
 * Readers:
 *   imgset_load_idx     IDX (LeCun's format): an idx3 unsigned-byte images
 *                       file (magic 0x00000803, then big-endian n, rows,
 *                       cols, then n*rows*cols pixels) and an idx1
 *                       unsigned-byte labels file (magic 0x00000801, n, then
 *                       n labels), each plain or gzip-compressed (detected
 *                       by the bytes 1f 8b).  Pixels are loaded into memory.
 *                       c = 1; n_classes = 10 (names "0".."9"), or the
 *                       largest label + 1 when that is more.
 *   imgset_load_cifar   CIFAR-10 binary batches: records of 1 label byte
 *                       (0..9) and 3072 pixel bytes (1024 R, 1024 G, 1024 B,
 *                       each a 32x32 plane, row-major); converted to HWC and
 *                       loaded into memory.  h = w = 32, c = 3,
 *                       n_classes = 10 (names "0".."9").  CIFAR-100's two
 *                       label bytes are not supported.
 *   imgset_load_folder  class folders: dir/<class>/<image>.  Every
 *                       subdirectory of dir whose name does not start with
 *                       '.' is a class, even an empty one (so that train and
 *                       test trees agree on class indices); classes and the
 *                       files within each class are sorted byte-wise
 *                       (strcmp).  Files whose extension is .png, .jpg,
 *                       .jpeg, .tif or .tiff (any case) are images; other
 *                       files and anything starting with '.' are ignored.
 *                       The format of each image is taken from its magic
 *                       bytes, not its extension.  Loading reads every
 *                       image's header (not its pixels): every image must
 *                       have the first image's height and width.  Channels:
 *                       c = 3 if any image has colour (RGB, palette, YCbCr,
 *                       RGBA, ...), else c = 1; grey images of a colour set
 *                       are replicated to R = G = B, alpha channels are
 *                       dropped (not composited), 16-bit samples are cut to
 *                       their high byte (PNG) or scaled (TIFF).  TIFF images
 *                       are read through libtiff's RGBA interface (first
 *                       directory only), so MINISWHITE is inverted to the
 *                       usual sense.  CMYK JPEGs are not supported.  Pixels
 *                       are decoded on demand by imgset_get.
 *
 * Limits: h, w <= IMGSET_MAX_DIM; n < 2^32; at most IMGSET_MAX_CLASSES
 * classes (labels are bytes).  Sizes read from a file are checked against
 * these limits and against the file's length before anything is allocated.
 *
 * Ownership: a loader fills *s (its previous contents are ignored, not
 * freed); everything it points to belongs to the set and is released by
 * imgset_free.  On failure *s is left zeroed, with nothing to free (calling
 * imgset_free on it is harmless).
 *
 * Thread safety: a loaded set is read-only; imgset_get and
 * imgset_class_index may run concurrently on one set from several threads,
 * each with its own out buffer and struct err.  Loading and freeing need
 * exclusive access.  The decoders use per-call state only (no global error
 * handlers are installed).
 *
 * Errors: functions return 0 or a negative ERR_* (lib/base/err.h) and fill e
 * with a message naming the file, the byte offset or field, and what was
 * expected.  Nothing is printed.
 */
#ifndef WENO_IMGSET_H
#define WENO_IMGSET_H

#include <stdint.h>

#include "../base/err.h"

#define IMGSET_MAX_DIM 4096u
#define IMGSET_MAX_CLASSES 256u

struct imgset {
	uint32_t n;            /* images */
	uint32_t h, w, c;      /* every image is h x w x c, u8, HWC interleaved */
	uint8_t *label;        /* [n] class indices, each < n_classes */
	uint32_t n_classes;
	char **class_names;    /* [n_classes] folder names, or "0".."9"... for IDX and CIFAR */
	uint8_t *pix;          /* [n][h][w][c] for IDX and CIFAR; NULL for folder sets */
	char **paths;          /* [n] folder sets: file paths in class order, then file
	                        * name (byte-wise); NULL for IDX and CIFAR */
	char *source;          /* provenance: the input file or directory names */
};

/* Loads an IDX image file and its labels file (each plain or gzipped). */
int imgset_load_idx(struct imgset *s, const char *images_path, const char *labels_path,
		    struct err *e);

/* Loads and concatenates npaths >= 1 CIFAR-10 binary batch files, in order. */
int imgset_load_cifar(struct imgset *s, const char *const *paths, int npaths, struct err *e);

/* Indexes a class-folder tree; pixels stay on disk until imgset_get. */
int imgset_load_folder(struct imgset *s, const char *dir, struct err *e);

/* Copies image i into out[h*w*c] (decoding it from disk for folder sets).
 * ERR_USAGE when i >= n; a folder image that no longer matches the set's
 * shape, or fails to decode, is an error naming the file. */
int imgset_get(const struct imgset *s, uint32_t i, uint8_t *out, struct err *e);

/* The class index of a class name (exact, byte-wise), or else of a decimal
 * number string below n_classes; -1 if neither. */
int imgset_class_index(const struct imgset *s, const char *name_or_number);

/* Frees everything the set owns and zeroes it; s may be NULL. */
void imgset_free(struct imgset *s);

#endif
